"""The manager's set-up page: settings, classes, CSV invitations, seeding, exclusion."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import LabelClass, Membership, Region

pytestmark = pytest.mark.django_db


def test_manager_changes_settings_and_sees_defaults_stated(campaign, client):
    project = campaign["project"]
    client.force_login(campaign["manager"])
    page = client.get(f"/projects/{project.pk}/setup/")
    assert page.status_code == 200
    assert b"Default: 3." in page.content  # redundancy k's default is stated
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    form.update(
        redundancy_k=4,
        redundancy_k_max=6,
        state="paused",
        assignment_expiry="1 00:00:00",
        guidelines="Outline every gland.",
    )
    for flag in ("polygon_annotations",):
        form[flag] = "on"
    form = {k: v for k, v in form.items() if v is not False}
    response = client.post(f"/projects/{project.pk}/setup/", form)
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    project.refresh_from_db()
    assert (project.redundancy_k, project.redundancy_k_max, project.state) == (4, 6, "paused")
    form.update(redundancy_k=7)
    bad = client.post(f"/projects/{project.pk}/setup/", form)
    assert bad.status_code == 200 and "redundancy_k_max" in bad.context["form"].errors
    project.refresh_from_db()
    assert project.redundancy_k == 4


def test_csv_invitation_creates_users_and_mails_a_password_link(campaign, client):
    project = campaign["project"]
    client.force_login(campaign["manager"])
    csv = b"username,email,role\nana,ana@example.org,annotator\nbo,bo@example.org,expert\n"
    response = client.post(
        f"/projects/{project.pk}/setup/invite/", {"file": SimpleUploadedFile("team.csv", csv)}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user__username="ana").role == "annotator"
    assert Membership.objects.get(project=project, user__username="bo").role == "expert"
    assert not get_user_model().objects.get(username="ana").has_usable_password()
    assert sorted(m.to[0] for m in mail.outbox) == ["ana@example.org", "bo@example.org"]
    assert "/reset/" in mail.outbox[0].body


def test_csv_with_one_bad_row_imports_nothing(campaign, client):
    project = campaign["project"]
    client.force_login(campaign["manager"])
    csv = b"cy,cy@example.org,annotator\ndee,not-an-email,annotator\n"
    client.post(f"/projects/{project.pk}/setup/invite/", {"file": SimpleUploadedFile("t.csv", csv)})
    assert not get_user_model().objects.filter(username__in=["cy", "dee"]).exists()
    assert not mail.outbox


def test_class_and_seed_forms(campaign, client):
    project = campaign["project"]
    client.force_login(campaign["manager"])
    client.post(
        f"/projects/{project.pk}/setup/classes/",
        {"name": "necrosis", "color": "#123456", "order": 5, "shortcut": "n"},
    )
    assert LabelClass.objects.get(project=project, name="necrosis").color == "#123456"
    client.post(f"/projects/{project.pk}/setup/seed/", {"per_slide": 3, "seed": 2})
    assert Region.objects.filter(project=project, origin="seeded").count() == 3


def test_other_roles_cannot_reach_the_setup_page(campaign, client):
    for user in (campaign["expert"], campaign["students"][0], campaign["researcher"]):
        client.force_login(user)
        assert client.get(f"/projects/{campaign['project'].pk}/setup/").status_code == 404


def test_guideline_example_image_is_uploaded_and_shown_to_members_only(
    campaign, client, shared_data
):
    project = campaign["project"]
    client.force_login(campaign["manager"])
    png = (shared_data / "images" / "skimage_ihc.png").read_bytes()
    client.post(
        f"/projects/{project.pk}/setup/guideline-images/",
        {"image": SimpleUploadedFile("ihc.png", png, "image/png"), "caption": "IHC example"},
    )
    image = project.guideline_images.get()
    url = f"/projects/{project.pk}/setup/guideline-images/{image.pk}/"
    client.force_login(campaign["students"][0])
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == png
    client.force_login(get_user_model().objects.create_user("stranger"))
    assert client.get(url).status_code == 404
