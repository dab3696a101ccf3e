"""Path traversal through every path-like input: slide registration, the import_slides
command, deep-zoom tile URLs, associated image names and uploaded file names."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from slides.models import Slide
from tests.factories import make_project, make_user
from tests.security.conftest import table_dump, tree

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _places() -> set[str]:
    roots = [django_settings.VAR_DIR, *django_settings.SLIDE_ROOTS]
    return {p for p in tree(*roots) if "test-db" not in p and "/broker" not in p}


@pytest.fixture
def root(tmp_path):
    """The writable slide root of the test session, with a real slide, a link out of it and a
    sibling folder whose name starts like the root's."""
    base = Path(django_settings.SLIDE_ROOTS[-1])
    base.mkdir(parents=True, exist_ok=True)
    inside = base / "traversal"
    inside.mkdir(exist_ok=True)
    secret = tmp_path / "secret.svs"
    secret.write_bytes(b"not for you")
    (inside / "link-out.svs").unlink(missing_ok=True)
    (inside / "link-out.svs").symlink_to(secret)
    (inside / "link-dir").unlink(missing_ok=True)
    (inside / "link-dir").symlink_to(tmp_path, target_is_directory=True)
    sibling = base.parent / f"{base.name}-evil"
    sibling.mkdir(exist_ok=True)
    (sibling / "x.svs").write_bytes(b"x")
    fifo = inside / "pipe.svs"
    if not fifo.exists():
        os.mkfifo(fifo)
    yield {"base": base, "inside": inside, "secret": secret, "sibling": sibling}
    for p in ("link-out.svs", "link-dir", "pipe.svs"):
        (inside / p).unlink(missing_ok=True)
    (sibling / "x.svs").unlink()
    sibling.rmdir()


def _bad_paths(r: dict) -> dict[str, tuple[str, str]]:
    base, inside = r["base"], r["inside"]
    return {
        "dot-dot out of the root": (f"{inside}/../../../../etc/passwd", "outside the slide roots"),
        "absolute path elsewhere": ("/etc/passwd", "outside the slide roots"),
        "symlink to a file outside": (f"{inside}/link-out.svs", "outside the slide roots"),
        "through a linked folder": (f"{inside}/link-dir/secret.svs", "outside the slide roots"),
        "sibling sharing the prefix": (f"{r['sibling']}/x.svs", "outside the slide roots"),
        "NUL byte": (f"{inside}/x.svs\x00.txt", "Null characters"),
        "URL-encoded dot-dot": (f"{inside}/%2e%2e/%2e%2e/etc/passwd", "does not exist"),
        "relative path": ("traversal/../../etc/passwd", "not an absolute path"),
        "home directory": ("~/.ssh/id_rsa", ""),
        "the root itself": (str(base), "not a regular file"),
        "a named pipe": (f"{inside}/pipe.svs", "not a regular file"),
        "proc file": ("/proc/self/environ", "outside the slide roots"),
        "empty": ("", ""),
        "very long": ("/" + "a/" * 3000, ""),
    }


CASES = [
    "dot-dot out of the root",
    "absolute path elsewhere",
    "symlink to a file outside",
    "through a linked folder",
    "sibling sharing the prefix",
    "NUL byte",
    "URL-encoded dot-dot",
    "relative path",
    "home directory",
    "the root itself",
    "a named pipe",
    "proc file",
    "empty",
    "very long",
]


@pytest.mark.parametrize("case", CASES)
def test_registration_path_outside_the_roots_is_refused(case, root, client):
    manager = make_user("boss")
    project = make_project(manager)
    client.force_login(manager)
    path, reason = _bad_paths(root)[case]
    before, rows = _places(), table_dump()
    response = client.post(
        f"/api/projects/{project.pk}/slides/", {"path": path}, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert reason in str(response.json()), response.json()
    assert not Slide.objects.exists()
    assert _places() == before and table_dump() == rows


@pytest.mark.parametrize("case", ["dot-dot out of the root", "symlink to a file outside"])
def test_import_slides_command_refuses_the_same_paths(case, root):
    manager = make_user("boss")
    project = make_project(manager)
    path, reason = _bad_paths(root)[case]
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_slides", path, "--project", project.slug, stderr=err)
    assert reason in err.getvalue()
    assert not Slide.objects.exists()


def test_import_slides_scan_skips_links_out_of_the_root(root):
    """A directory scan finds link-out.svs (and the linked folder's file) but registers neither."""
    manager = make_user("boss")
    project = make_project(manager)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_slides", str(root["inside"]), "--project", project.slug, stderr=err)
    assert "outside the slide roots" in err.getvalue()
    assert not Slide.objects.exists()


@pytest.fixture
def member_slide(two_projects, client):
    client.force_login(two_projects["users"]["annotator"])
    return two_projects["slide_a"]


@pytest.mark.parametrize(
    "url",
    [
        "/dz/{id}_files/999/0_0.jpeg",
        "/dz/{id}_files/0/99999999999999999999999_0.jpeg",
        "/dz/{id}_files/0/0_99999999999999999999999.jpeg",
        "/dz/99999999999999999999999_files/0/0_0.jpeg",
        "/dz/99999999999999999999999.dzi",
        "/dz/{id}_files/-1/0_0.jpeg",
        "/dz/{id}_files/0/-1_0.jpeg",
        "/dz/{id}_files/../../../etc/passwd",
        "/dz/{id}_files/%2e%2e/%2e%2e/0_0.jpeg",
        "/dz/{id}_files/0/0_0.jpeg/../../../../etc/passwd",
        "/dz/{id}_files/0/0_0.png",
        "/dz/{id}_files/0x1/0_0.jpeg",
        "/dz/{id}_files/1e3/0_0.jpeg",
        "/dz/{other}_files/10/0_0.jpeg",
    ],
)
def test_odd_tile_urls_are_404_and_read_nothing(url, member_slide, two_projects, client):
    target = url.format(id=member_slide.pk, other=two_projects["slide_b"].pk)
    response = client.get(target)
    assert response.status_code == 404, (target, response.status_code)
    assert b"root:" not in response.content and response.get("Content-Type") != "image/jpeg"


def test_a_good_tile_still_serves(member_slide, client):
    level = len(member_slide.deepzoom["level_tiles"]) - 1
    assert client.get(f"/dz/{member_slide.pk}_files/{level}/0_0.jpeg").status_code == 200


@pytest.mark.parametrize(
    "name", ["..", ".", "...", "label..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "LABEL", "label.png"]
)
def test_associated_image_names_outside_the_slides_list_are_404(name, two_projects, client):
    client.force_login(two_projects["users"]["manager"])
    slide = two_projects["slide_a"]
    response = client.get(f"/api/slides/{slide.pk}/associated/{name}/")
    assert response.status_code == 404, (name, response.content)
    assert response["Content-Type"] == "application/json"


def test_guideline_image_file_name_cannot_leave_media(two_projects, client, shared_data):
    from annotation.models import GuidelineImage

    client.force_login(two_projects["users"]["manager"])
    project = two_projects["a"]
    png = (shared_data / "images" / "skimage_ihc.png").read_bytes()
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="../../../../../tmp/evil.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    before = _places()
    response = client.post(
        f"/projects/{project.pk}/setup/guideline-images/",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 302
    image = GuidelineImage.objects.get()
    stored = Path(image.image.path).resolve()
    assert stored.is_relative_to(django_settings.MEDIA_ROOT) and ".." not in image.image.name
    assert {Path(p) for p in _places() - before} <= {stored, *stored.parents}
    assert not Path("/tmp/evil.png").exists()
