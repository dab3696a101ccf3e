"""Every numeric setting has a documented range, checked by the API and the page form
(audit finding 8), and the class cap holds on every path that creates classes (finding 6).

The walk reads each writable numeric field's bounds from the model's validators, then sends
the value just outside each bound (integers +-1, durations +-1 second, floats the next
representable number): 400 from the API, a form error from the page, and no row changed. The
values on the bounds themselves are accepted, so the refusals are about the range.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.forms.models import model_to_dict
from django.utils.duration import duration_string

from annotation.forms import CampaignForm, LabelClassForm
from annotation.models import LabelClass, Project
from annotation.serializers import ProjectSerializer
from annotation.serializers_campaign import LabelClassSerializer
from tests.security.conftest import table_dump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(240)]

NUMERIC = (models.IntegerField, models.FloatField, models.DurationField, models.DecimalField)


def _writable_numeric(serializer: type, model: type) -> list[str]:
    fields = serializer().get_fields()
    return sorted(
        name
        for name, field in fields.items()
        if not field.read_only
        and name in {f.name for f in model._meta.get_fields()}
        and isinstance(model._meta.get_field(name), NUMERIC)
    )


def _bounds(model: type, name: str) -> tuple[Any, Any]:
    validators = model._meta.get_field(name).validators
    low = [v.limit_value for v in validators if isinstance(v, MinValueValidator)]
    high = [v.limit_value for v in validators if isinstance(v, MaxValueValidator)]
    return (max(low) if low else None), (min(high) if high else None)


def _step(value: Any, direction: int) -> Any:
    if isinstance(value, dt.timedelta):
        return value + direction * dt.timedelta(seconds=1)
    if isinstance(value, float):
        return math.nextafter(value, direction * math.inf)
    return value + direction


def _wire(value: Any) -> Any:
    return duration_string(value) if isinstance(value, dt.timedelta) else value


PROJECT_FIELDS = _writable_numeric(ProjectSerializer, Project)
CLASS_FIELDS = _writable_numeric(LabelClassSerializer, LabelClass)
# Settings that must move together to stay valid on their bounds (k never above k_max).
COMPANIONS = {
    ("redundancy_k", "high"): {"redundancy_k_max": 50},
    ("redundancy_k_max", "low"): {"redundancy_k": 1},
}


def test_every_writable_numeric_setting_has_both_bounds():
    assert "assignment_expiry" in PROJECT_FIELDS and "order" in CLASS_FIELDS
    missing = [
        f"{model.__name__}.{name}"
        for model, names in ((Project, PROJECT_FIELDS), (LabelClass, CLASS_FIELDS))
        for name in names
        if None in _bounds(model, name)
    ]
    assert missing == []


def _cases(model: type, names: list[str]) -> list[tuple[str, str, Any, Any]]:
    cases = []
    for name in names:
        low, high = _bounds(model, name)
        cases.append((name, "low", low, _step(low, -1)))
        cases.append((name, "high", high, _step(high, +1)))
    return cases


@pytest.mark.parametrize(
    ("name", "side", "bound", "outside"),
    _cases(Project, PROJECT_FIELDS),
    ids=lambda v: str(v) if isinstance(v, str) else "",
)
def test_project_setting_just_outside_its_range_is_refused_by_api_and_form(
    two_projects, client, name, side, bound, outside
):
    world = two_projects
    project = world["a"]
    auth = {"HTTP_AUTHORIZATION": f"Token {world['tokens']['manager']}"}
    extra = COMPANIONS.get((name, side), {})
    before = table_dump()
    refused = client.patch(
        f"/api/projects/{project.pk}/",
        json.dumps({name: _wire(outside), **extra}),
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 400, (name, outside, refused.content)
    assert name in refused.json()
    form = CampaignForm(
        data={**_form_data(project), name: _wire(outside), **extra}, instance=project
    )
    assert not form.is_valid() and name in form.errors
    client.force_login(world["users"]["manager"])
    page = client.post(
        f"/projects/{project.pk}/setup/", {**_form_data(project), name: _wire(outside), **extra}
    )
    assert page.status_code == 200  # the form again, with its error; no redirect
    assert table_dump() == before
    accepted = client.patch(
        f"/api/projects/{project.pk}/",
        json.dumps({name: _wire(bound), **extra}),
        content_type="application/json",
        **auth,
    )
    assert accepted.status_code == 200, (name, bound, accepted.content)


def _form_data(project: Project) -> dict:
    data = model_to_dict(project, fields=list(CampaignForm.base_fields))
    data = {k: v for k, v in data.items() if v is not None}
    data["assignment_expiry"] = duration_string(project.assignment_expiry)
    for key, value in list(data.items()):
        if value is False:
            data.pop(key)  # an unchecked box is absent from a real form post
    return data


@pytest.mark.parametrize(
    ("name", "side", "bound", "outside"),
    _cases(LabelClass, CLASS_FIELDS),
    ids=lambda v: str(v) if isinstance(v, str) else "",
)
def test_label_class_setting_just_outside_its_range_is_refused(
    two_projects, client, name, side, bound, outside
):
    world = two_projects
    auth = {"HTTP_AUTHORIZATION": f"Token {world['tokens']['manager']}"}
    url = f"/api/projects/{world['a'].pk}/label-classes/"
    before = table_dump()
    refused = client.post(
        url, {"name": "edge", "color": "#00ff00", name: outside}, "application/json", **auth
    )
    assert refused.status_code == 400 and name in refused.json()
    form = LabelClassForm(data={"name": "edge", "color": "#00ff00", name: outside})
    assert not form.is_valid() and name in form.errors
    assert table_dump() == before
    accepted = client.post(
        url, {"name": "edge", "color": "#00ff00", name: bound}, "application/json", **auth
    )
    assert accepted.status_code == 201, accepted.content


def test_the_audits_overflowing_values_are_refused(two_projects, client):
    """3,000,000 days was accepted, then every next-region call answered 500; a class order
    of 10**10 was accepted."""
    world = two_projects
    auth = {"HTTP_AUTHORIZATION": f"Token {world['tokens']['manager']}"}
    refused = client.patch(
        f"/api/projects/{world['a'].pk}/",
        {"assignment_expiry": "3000000 00:00:00"},
        "application/json",
        **auth,
    )
    assert refused.status_code == 400
    annotator = {"HTTP_AUTHORIZATION": f"Token {world['tokens']['annotator']}"}
    following = client.post(f"/api/projects/{world['a'].pk}/next-region/", **annotator)
    assert following.status_code < 500
    # The audit's other value: a class order of 10**10.
    ordered = client.post(
        f"/api/projects/{world['a'].pk}/label-classes/",
        {"name": "far", "color": "#00ff00", "order": 10**10},
        "application/json",
        **auth,
    )
    assert ordered.status_code == 400 and "order" in ordered.json()


def test_class_cap_holds_on_the_api_the_page_and_the_import(two_projects, client, settings):
    settings.LABEL_CLASSES_MAX = 4
    world = two_projects
    project = world["a"]  # holds one class already
    auth = {"HTTP_AUTHORIZATION": f"Token {world['tokens']['manager']}"}
    url = f"/api/projects/{project.pk}/label-classes/"
    for n in range(3):
        made = client.post(url, {"name": f"c{n}", "color": "#00ff00"}, "application/json", **auth)
        assert made.status_code == 201
    before = table_dump()
    over = client.post(url, {"name": "c9", "color": "#00ff00"}, "application/json", **auth)
    assert over.status_code == 400 and "LABEL_CLASSES_MAX" in over.content.decode()
    client.force_login(world["users"]["manager"])
    page = client.post(
        f"/projects/{project.pk}/setup/classes/",
        {"name": "c9", "color": "#00ff00", "order": 0},
        follow=True,
    )
    assert "LABEL_CLASSES_MAX" in page.content.decode()
    # A GeoJSON import naming new classes is refused whole: no class, no shape.
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[10, 10], [50, 10], [50, 50], [10, 50], [10, 10]]],
            },
            "properties": {"classification": {"name": f"imported-{i}"}},
        }
        for i in range(3)
    ]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "many.geojson",
        json.dumps({"type": "FeatureCollection", "features": features}).encode(),
        content_type="application/geo+json",
    )
    imported = client.post(
        f"/api/projects/{project.pk}/import-annotations/",
        {"slide": world["slide_a"].pk, "source": "audit", "file": upload},
    )
    assert imported.status_code == 400 and "LABEL_CLASSES_MAX" in imported.content.decode()
    assert table_dump() == before
    assert LabelClass.objects.filter(project=project).count() == 4
