"""Projects, members and roles through the API; slide registration, upload and import."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from annotation.models import Membership, Project
from slides.models import Slide
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def _json(client, method: str, url: str, body: dict | None = None):
    return getattr(client, method)(url, body or {}, content_type="application/json")


@pytest.mark.smoke
def test_staff_creates_project_and_becomes_its_manager(client):
    staff = make_user(is_staff=True)
    client.force_login(staff)
    response = _json(
        client, "post", "/api/projects/", {"name": "Colon", "slug": "colon", "target_mpp": 0.5}
    )
    assert response.status_code == 201, response.content
    project = Project.objects.get(slug="colon")
    assert response.json()["my_role"] == "manager"
    assert Membership.objects.get(project=project, user=staff).role == "manager"


def test_non_staff_cannot_create_projects(client):
    client.force_login(make_user())
    response = _json(
        client, "post", "/api/projects/", {"name": "X", "slug": "x", "target_mpp": 0.5}
    )
    assert response.status_code == 403
    assert not Project.objects.exists()


@pytest.mark.parametrize("mpp", [0, -1, "NaN", "Infinity", 1e9, "abc"])
def test_project_with_bad_target_mpp_is_refused(client, mpp):
    client.force_login(make_user(is_staff=True))
    response = _json(
        client, "post", "/api/projects/", {"name": "X", "slug": "x", "target_mpp": mpp}
    )
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_manager_adds_members_and_other_roles_cannot(client):
    manager, expert, student = make_user(), make_user(), make_user("student")
    project = make_project(manager)
    add_member(project, expert, "expert")
    url = f"/api/projects/{project.pk}/members/"
    client.force_login(expert)
    assert (
        _json(client, "post", url, {"username": "student", "role": "annotator"}).status_code == 404
    )
    assert not Membership.objects.filter(user=student).exists()
    client.force_login(manager)
    response = _json(client, "post", url, {"username": "student", "role": "annotator"})
    assert response.status_code == 201
    assert Membership.objects.get(user=student, project=project).role == "annotator"
    bad = _json(client, "post", url, {"username": "student", "role": "overlord"})
    assert bad.status_code == 400


def test_member_list_is_hidden_from_outsiders(client):
    manager, outsider = make_user(), make_user()
    project = make_project(manager)
    client.force_login(outsider)
    assert client.get(f"/api/projects/{project.pk}/members/").status_code == 404
    assert client.get(f"/api/projects/{project.pk}/").status_code == 404
    assert client.get("/api/projects/").json()["results"] == []


def test_register_slide_by_path_under_roots(client, slides_dir):
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    url = f"/api/projects/{project.pk}/slides/"
    response = _json(
        client,
        "post",
        url,
        {"path": str(slides_dir / "cmu-1-small-region.svs"), "case_key": "case-7"},
    )
    assert response.status_code == 201, response.content
    slide = Slide.objects.get()
    assert slide.case_key == "case-7" and slide.status == "pending"
    assert list(project.slides.all()) == [slide]
    # Registering the same file again does not duplicate it.
    again = _json(client, "post", url, {"path": str(slides_dir / "cmu-1-small-region.svs")})
    assert again.status_code == 200 and Slide.objects.count() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "relative/path.svs",
        "{data}/../../../etc/passwd",
        "{data}/missing.svs",
        "{data}",
        "/proc/self/environ",
        "{data}/cmu-1-small-region.svs\x00.txt",
    ],
)
def test_registration_outside_slide_roots_is_refused(client, slides_dir, path):
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    response = _json(
        client,
        "post",
        f"/api/projects/{project.pk}/slides/",
        {"path": path.format(data=slides_dir)},
    )
    assert response.status_code == 400
    assert not Slide.objects.exists()


def test_symlink_escaping_a_root_is_refused(client, tmp_path):
    manager = make_user()
    project = make_project(manager)
    link = Path(settings.SLIDE_ROOTS[-1]) / "escape.svs"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/hostname")
    client.force_login(manager)
    response = _json(client, "post", f"/api/projects/{project.pk}/slides/", {"path": str(link)})
    assert response.status_code == 400
    assert not Slide.objects.exists()
    link.unlink()


def test_annotator_cannot_register_slides(client, slides_dir):
    manager, student = make_user(), make_user()
    project = make_project(manager)
    add_member(project, student, "annotator")
    client.force_login(student)
    response = _json(
        client,
        "post",
        f"/api/projects/{project.pk}/slides/",
        {"path": str(slides_dir / "cmu-1-small-region.svs")},
    )
    assert response.status_code == 404
    assert not Slide.objects.exists()


def test_import_slides_command_with_case_keys(slides_dir):
    project = make_project(make_user(), slug="demo")
    call_command(
        "import_slides", str(slides_dir), "--project", "demo", "--case-key-from", r"^([a-z]+)-"
    )
    names = dict(project.slides.values_list("name", "case_key"))
    assert names["cmu-1-small-region.svs"] == "cmu"
    assert names["hamamatsu-dapi.ndpi"] == names["hamamatsu-tritc.ndpi"] == "hamamatsu"
    assert "small_dicom.dcm" in names  # registered; ingest will mark it FAILED
    with pytest.raises(CommandError):
        call_command("import_slides", "/etc/hostname", "--project", "demo")


def _upload(client, project_id: int, name: str, data: bytes):
    return client.post(f"/api/projects/{project_id}/upload/", {"file": _named(name, data)})


def _named(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_upload_single_file_is_streamed_into_the_upload_root(client, slides_dir):
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    data = (slides_dir / "cmu-1-small-region.svs").read_bytes()
    response = _upload(client, project.pk, "cmu.svs", data)
    assert response.status_code == 201, response.content
    slide = Slide.objects.get()
    assert Path(slide.path).is_relative_to(settings.SLIDE_UPLOAD_ROOT)
    assert Path(slide.path).read_bytes() == data and slide.uploaded


def test_upload_over_the_cap_is_413_and_writes_nothing(client, settings):
    settings.SLIDE_UPLOAD_MAX_BYTES = 10_000
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    before = (
        set(settings.SLIDE_UPLOAD_ROOT.rglob("*")) if settings.SLIDE_UPLOAD_ROOT.exists() else set()
    )
    response = _upload(client, project.pk, "big.svs", b"x" * 50_000)
    assert response.status_code == 413
    assert not Slide.objects.exists()
    after = (
        set(settings.SLIDE_UPLOAD_ROOT.rglob("*")) if settings.SLIDE_UPLOAD_ROOT.exists() else set()
    )
    assert after == before


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_of_a_slide_is_unpacked_and_registered(client, slides_dir):
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    data = (slides_dir / "cmu-1-small-region.svs").read_bytes()
    archive = _zip({"case1/cmu.svs": data, "case1/notes.txt": b"scanned 2024"})
    response = _upload(client, project.pk, "case1.zip", archive)
    assert response.status_code == 201, response.content
    slide = Slide.objects.get()
    assert slide.name == "cmu.svs" and Path(slide.path).read_bytes() == data


@pytest.mark.parametrize(
    "members, reason",
    [
        ({"../../escape.svs": b"x"}, "outside"),
        ({"/abs/escape.svs": b"x"}, "outside"),
        ({"a/../../escape.svs": b"x"}, "outside"),
        ({"bomb.svs": b"\0" * 5_000_000}, "expands"),
        ({f"f{i}.dat": b"" for i in range(60)} | {"s.svs": b"x"}, "members"),
        ({"readme.txt": b"no slide here"}, "no slide"),
    ],
)
@pytest.mark.smoke
def test_hostile_zip_is_refused_and_nothing_is_written(client, settings, members, reason):
    settings.ARCHIVE_MAX_MEMBERS = 50
    settings.ARCHIVE_MAX_RATIO = 100
    manager = make_user()
    project = make_project(manager)
    client.force_login(manager)
    root = settings.SLIDE_UPLOAD_ROOT
    before = set(root.rglob("*")) if root.exists() else set()
    response = _upload(client, project.pk, "evil.zip", _zip(members))
    assert response.status_code == 400
    assert reason in response.json()["file"][0]
    after = set(root.rglob("*")) if root.exists() else set()
    assert after == before
    assert not (root.parent / "escape.svs").exists()
    assert not Slide.objects.exists()


def test_token_obtain_and_revoke(client):
    user = make_user("tok")
    response = client.post("/api/auth/token/", {"username": "tok", "password": PASSWORD})
    assert response.status_code == 200
    key = response.json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/projects/", **auth).status_code == 200
    assert client.delete("/api/auth/token/", **auth).status_code == 204
    assert client.get("/api/projects/", **auth).status_code == 401
    assert user.is_active


def test_schema_and_docs_are_served(client):
    client.force_login(make_user())
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/slides/{id}/crop/" in schema.content
    assert client.get("/api/docs/").status_code == 200
