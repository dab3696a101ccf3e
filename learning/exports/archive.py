"""A deterministic, streamed zip archive with a sha256 per member (pure: stdlib, numpy, Pillow).

Members are written one at a time, in the order the caller gives, with a fixed timestamp and
fixed permissions, so the same members give the same bytes. Already-compressed members (PNG,
JPEG, npz) are stored; text is deflated. ``close`` appends ``checksums.sha256`` (one
``<sha256>  <name>`` line per other member, in write order) and returns its own sha256: the
export's name.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = [
    "CHECKSUMS",
    "FIXED_TIME",
    "DeterministicZip",
    "encode_image",
    "encode_mask",
    "npz_bytes",
    "png_bytes",
]

CHECKSUMS = "checksums.sha256"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say; same for every member
_STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".npz")
_CHUNK = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DeterministicZip:
    """Write members to ``handle`` one at a time; never holds more than one member in memory."""

    def __init__(self, handle: BinaryIO) -> None:
        self._zip = zipfile.ZipFile(handle, "w", allowZip64=True)
        self._digests: list[tuple[str, str]] = []
        self._names: set[str] = set()
        self.bytes_written = 0

    def _info(self, name: str, last: bool = False) -> zipfile.ZipInfo:
        if name in self._names or (name == CHECKSUMS and not last):
            raise ValueError(f"member {name!r} written twice (or reserved)")
        self._names.add(name)
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.external_attr = 0o644 << 16
        info.create_system = 3  # unix, whatever machine writes it
        stored = name.lower().endswith(_STORED_SUFFIXES)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        return info

    def add_bytes(self, name: str, data: bytes) -> str:
        """Write one member; returns its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        self._zip.writestr(self._info(name), data)
        self._digests.append((name, digest))
        self.bytes_written += len(data)
        return digest

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> str:
        """Write one member from chunks (e.g. a large JSON assembled from parts on disk)."""
        info = self._info(name)
        digest = hashlib.sha256()
        with self._zip.open(info, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
                self.bytes_written += len(chunk)
        self._digests.append((name, digest.hexdigest()))
        return digest.hexdigest()

    def add_file(self, name: str, path: str) -> str:
        def chunks() -> Iterable[bytes]:
            with open(path, "rb") as handle:
                while block := handle.read(_CHUNK):
                    yield block

        return self.add_stream(name, chunks())

    @property
    def members(self) -> list[tuple[str, str]]:
        """``(name, sha256)`` of the members written so far, in order."""
        return list(self._digests)

    def close(self) -> str:
        """Append ``checksums.sha256`` and close; returns its sha256 (the export hash)."""
        text = "".join(f"{digest}  {name}\n" for name, digest in self._digests).encode()
        self._zip.writestr(self._info(CHECKSUMS, last=True), text)
        self._zip.close()
        return hashlib.sha256(text).hexdigest()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(pixels: npt.NDArray[np.uint8], palette: bytes | None = None, level: int = 1) -> bytes:
    """A PNG of ``(H, W, 3)`` RGB or ``(H, W)`` indexed pixels (with ``palette``, 768 bytes).

    Every row uses PNG's "up" filter (the difference from the row above, done in numpy) and
    zlib at ``level``: about twice as fast as Pillow's adaptive filtering at the same level
    for the same size on H&E patches, and byte-for-byte the same output for the same pixels.
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    if pixels.ndim == 3 and pixels.shape[2] == 3 and palette is None:
        color_type, rows = 2, pixels.reshape(height, width * 3)
    elif pixels.ndim == 2 and palette is not None:
        color_type, rows = 3, pixels
    else:
        raise ValueError(f"expected (H, W, 3) RGB or (H, W) with a palette, got {pixels.shape}")
    raw = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 2  # "up"
    raw[0, 0] = 0  # the first row has nothing above it: "none"
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps, as PNG's does
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if palette is not None:
        parts.append(_chunk(b"PLTE", palette))
    parts += [_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)), _chunk(b"IEND", b"")]
    return b"".join(parts)


def encode_image(rgb: npt.NDArray[np.uint8], image_format: str, jpeg_quality: int = 90) -> bytes:
    """``(H, W, 3)`` uint8 as PNG (lossless, zlib level 1) or baseline JPEG (Pillow)."""
    if image_format == "png":
        return png_bytes(rgb)
    if image_format != "jpeg":
        raise ValueError(f"unknown image format {image_format!r}: known are png, jpeg")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    image = Image.frombytes("RGB", (rgb.shape[1], rgb.shape[0]), rgb.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=jpeg_quality, subsampling=0, optimize=False)
    return buffer.getvalue()


def encode_mask(mask: npt.NDArray[np.uint8], palette: bytes) -> bytes:
    """``(H, W)`` uint8 class indices as an indexed (palette) PNG; the pixel values are the ids."""
    return png_bytes(mask, palette=palette, level=6)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` (``numpy.load`` reads it) with fixed timestamps, unlike
    ``numpy.savez_compressed``, whose members carry the time they were written."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            with archive.open(info, "w") as out:
                np.lib.format.write_array(out, np.ascontiguousarray(arrays[name]))
    return buffer.getvalue()
