"""Safe unpacking of multi-file slide uploads (MIRAX .mrxs + folder, Hamamatsu .vms + files).

Nothing in the archive is trusted: member names are checked so no path escapes the target
directory, symlinks and special files are refused, and the number of members, the total size and
each member's compression ratio are capped while bytes are written (header sizes can lie).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The file OpenSlide opens for each multi-file format, by extension.
MAIN_FILE_SUFFIXES = (
    ".mrxs",
    ".vms",
    ".vmu",
    ".svs",
    ".ndpi",
    ".tif",
    ".tiff",
    ".scn",
    ".bif",
    ".dcm",
    ".svslide",
)


class UnsafeArchive(ValueError):
    """The archive breaks a safety rule; nothing was left on disk."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_total_bytes: int
    max_ratio: float


# Archive formats other than zip, by name and by their first bytes: refused outright, so a tar
# with ``../`` members is never handed to a reader that might unpack it.
_OTHER_ARCHIVE_SUFFIXES = (
    ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar",
)  # fmt: skip
_OTHER_ARCHIVE_MAGIC = (
    (0, b"\x1f\x8b", "gzip"),
    (0, b"BZh", "bzip2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"(\xb5/\xfd", "zstd"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (257, b"ustar", "tar"),
)


def refuse_other_archives(path: Path, name: str) -> None:
    """Raise :class:`UnsafeArchive` for a tar, gzip, 7z, rar... upload: only zip is unpacked."""
    lowered = name.lower()
    kind = next((s for s in _OTHER_ARCHIVE_SUFFIXES if lowered.endswith(s)), None)
    if kind is None:
        with open(path, "rb") as handle:
            head = handle.read(512)
        kind = next(
            (label for offset, magic, label in _OTHER_ARCHIVE_MAGIC
             if head[offset : offset + len(magic)] == magic),
            None,
        )  # fmt: skip
    if kind is not None:
        raise UnsafeArchive(
            f"{kind.lstrip('.')} archives are not accepted: upload the slide file itself, "
            "or a .zip of a multi-file slide"
        )


def _safe_member_path(name: str, target: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise UnsafeArchive(f"member {name!r} would be written outside the upload directory")
    destination = (target / pure).resolve()
    if not destination.is_relative_to(target.resolve()):
        raise UnsafeArchive(f"member {name!r} would be written outside the upload directory")
    return destination


def extract_zip(archive: Path, target: Path, limits: ArchiveLimits) -> list[Path]:
    """Extract ``archive`` into the new directory ``target``; return the files written.

    On any violation the partly written ``target`` is removed and :class:`UnsafeArchive` raised.
    """
    target.mkdir(parents=True, exist_ok=False)
    try:
        return _extract(archive, target, limits)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _extract(archive: Path, target: Path, limits: ArchiveLimits) -> list[Path]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"not a readable zip archive: {exc}") from None
    written: list[Path] = []
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise UnsafeArchive(
                f"the archive has {len(members)} members; at most {limits.max_members} allowed"
            )
        total = 0
        for info in members:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(f"member {info.filename!r} is a symbolic link")
            destination = _safe_member_path(info.filename, target)
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            # Many zip writers store permission bits only (file type 0): treat those as files.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise UnsafeArchive(f"member {info.filename!r} is not a regular file")
            # Count real bytes as they are inflated: a header's file_size can understate them.
            allowed_member = max(info.compress_size, 1) * limits.max_ratio + 1024
            member_bytes = 0
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                sink = open(destination, "xb")  # noqa: SIM115 - closed by the with below
            except OSError:
                # A second member of the same name, or a file where a folder must go.
                raise UnsafeArchive(
                    f"member {info.filename!r} clashes with another member of the archive"
                ) from None
            with zf.open(info) as source, sink:
                while chunk := source.read(1 << 20):
                    member_bytes += len(chunk)
                    total += len(chunk)
                    if member_bytes > allowed_member:
                        raise UnsafeArchive(
                            f"member {info.filename!r} expands more than "
                            f"{limits.max_ratio:g} times its compressed size"
                        )
                    if total > limits.max_total_bytes:
                        raise UnsafeArchive(
                            f"the archive expands past {limits.max_total_bytes} bytes"
                        )
                    sink.write(chunk)
            written.append(destination)
    return written


def find_main_file(files: list[Path]) -> Path:
    """The one file OpenSlide should open among the unpacked files."""
    for suffix in MAIN_FILE_SUFFIXES:
        matches = sorted(p for p in files if p.suffix.lower() == suffix)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UnsafeArchive(
                f"the archive holds {len(matches)} '{suffix}' files; upload one slide per archive"
            )
    raise UnsafeArchive("the archive holds no slide file (.mrxs, .vms, .svs, .ndpi, .tif, ...)")
