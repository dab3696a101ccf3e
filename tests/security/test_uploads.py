"""Hostile slide uploads: zip slip, links, bombs, 100k members, tar; each refused with a clear
400, nothing written anywhere (upload root, media, slide roots, var/), and no Slide row."""

from __future__ import annotations

import functools
import io
import stat
import tarfile
import zipfile

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from slides.models import Slide
from tests.factories import make_project, make_user
from tests.security.conftest import tree

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _places() -> set[str]:
    """Everything under var/ (uploads, media, tiles, slides) and the slide roots; the test
    database's own files change with every query and are left out."""
    roots = [django_settings.VAR_DIR, django_settings.SLIDE_UPLOAD_ROOT, django_settings.MEDIA_ROOT]
    roots += [r for r in django_settings.SLIDE_ROOTS if django_settings.VAR_DIR in r.parents]
    return {p for p in tree(*roots) if "test-db" not in p and "/broker" not in p}


@pytest.fixture
def manager_client(client):
    django_settings.SLIDE_UPLOAD_ROOT.mkdir(parents=True, exist_ok=True)  # its place exists
    manager = make_user("uploader")
    project = make_project(manager)
    client.force_login(manager)
    return client, project


def _upload(client, project_id: int, name: str, data: bytes):
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(f"/api/projects/{project_id}/upload/", {"file": upload})


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: external_attr's high bits are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@functools.cache
def _hundred_thousand_members() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for i in range(100_000):
            zf.writestr(f"t/{i}.jpg", b"")
        zf.writestr("s.svs", b"x")
    return buffer.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


HOSTILE_ZIPS = {
    "symlink member": ([(_symlink("slide.svs", "/etc/passwd"), b"/etc/passwd")], "symbolic link"),
    "symlink folder then a file through it": (
        [(_symlink("d", "/tmp"), b"/tmp"), ("d/escape.svs", b"x")],
        "symbolic link",
    ),
    "backslash traversal": ([("..\\..\\escape.svs", b"x")], "outside the upload directory"),
    "drive letter": ([("C:/escape.svs", b"x")], "outside the upload directory"),
    "dot-dot in the middle": ([("a/b/../../../escape.svs", b"x")], "outside the upload directory"),
    "absolute path": ([("/tmp/escape.svs", b"x")], "outside the upload directory"),
    "same member twice": ([("s.svs", b"x"), ("s.svs", b"y")], "clashes"),
    "file where a folder must go": ([("a", b"x"), ("a/s.svs", b"y")], "clashes"),
    "over-compressed member": ([("bomb.svs", b"\0" * 3_000_000)], "expands more than"),
}


@pytest.mark.parametrize("case", HOSTILE_ZIPS, ids=list(HOSTILE_ZIPS))
def test_hostile_zip_is_refused_with_a_reason_and_writes_nothing(case, manager_client):
    client, project = manager_client
    members, reason = HOSTILE_ZIPS[case]
    before = _places()
    response = _upload(client, project.pk, "evil.zip", _zip(members))
    assert response.status_code == 400, response.content
    assert reason in response.json()["file"][0]
    assert _places() == before
    assert not Slide.objects.exists()


def test_archive_past_the_total_size_cap_is_refused(manager_client, settings):
    settings.ARCHIVE_MAX_TOTAL_BYTES = 100_000
    client, project = manager_client
    before = _places()
    parts = [(f"p{i}.dat", bytes(range(256)) * 200) for i in range(5)] + [("s.svs", b"x")]
    response = _upload(client, project.pk, "big.zip", _zip(parts))
    assert response.status_code == 400
    assert "expands past 100000 bytes" in response.json()["file"][0]
    assert _places() == before


@pytest.mark.timeout(180)
def test_archive_of_100k_members_is_refused_by_the_default_member_cap(manager_client):
    client, project = manager_client
    assert django_settings.ARCHIVE_MAX_MEMBERS == 20_000  # the default of README's table
    before = _places()
    response = _upload(client, project.pk, "many.zip", _hundred_thousand_members())
    assert response.status_code == 400
    assert "100001 members; at most 20000" in response.json()["file"][0]
    assert _places() == before


@pytest.mark.parametrize(
    "name, data",
    [
        ("slide.tar", _tar({"../../escape.svs": b"x"})),
        ("slide.tar.gz", _tar({"../escape.svs": b"x"}, "w:gz")),
        ("slide.tgz", _tar({"/etc/cron.d/x": b"x"}, "w:gz")),
        ("innocent.svs", _tar({"../../escape.svs": b"x"})),  # a tar by its bytes
        ("innocent.ndpi", _tar({"a.svs": b"x"}, "w:gz")),  # gzip by its bytes
    ],
    ids=["tar", "tar.gz", "tgz", "tar named .svs", "gzip named .ndpi"],
)
def test_tar_and_other_archives_are_refused_clearly(name, data, manager_client):
    client, project = manager_client
    before = _places()
    response = _upload(client, project.pk, name, data)
    assert response.status_code == 400, response.content
    message = response.json()["file"][0]
    assert "archives are not accepted" in message and ".zip" in message
    assert _places() == before
    assert not Slide.objects.exists()


def _raw_multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """The file part written by hand: test clients strip the name before it is sent."""
    boundary = "hostile-boundary-7c1e"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


@pytest.mark.parametrize(
    "name", ["../../escape.svs", "..", ".", "/etc/escape.svs", "..\\..\\e.svs", "a/../../e.svs"]
)
def test_upload_file_name_cannot_leave_the_upload_root(name, manager_client, slides_dir):
    from pathlib import Path

    client, project = manager_client
    body, boundary = _raw_multipart(name, (slides_dir / "cmu-1-small-region.svs").read_bytes())
    before = _places()
    response = client.post(
        f"/api/projects/{project.pk}/upload/",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    root = django_settings.SLIDE_UPLOAD_ROOT
    if response.status_code == 400:  # Django refused a part it could not name
        assert response.json()  # a stated reason, e.g. a multipart parse error
        assert _places() == before
        return
    assert response.status_code == 201, response.content
    path = Path(Slide.objects.get().path)
    # uploads/<random folder>/<plain name>: nothing above or beside it.
    assert path.parent.parent == root and path.name not in ("", ".", "..")
    assert "/" not in path.name and ".." not in path.name.split("\\")
    added = _places() - before
    assert added == {str(path.parent), str(path)}, added
