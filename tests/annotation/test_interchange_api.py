"""Importing real QuPath/ASAP files onto a slide through the API, and exporting them again."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from shapely.geometry import shape as to_shape

from annotation.models import LabelClass, SlideAnnotation

pytestmark = pytest.mark.django_db


def _import(client, project_id, slide_id, path, source="prior expert"):
    upload = SimpleUploadedFile(path.name, path.read_bytes())
    return client.post(
        f"/api/projects/{project_id}/import-annotations/",
        {"slide": slide_id, "source": source, "file": upload},
    )


def test_qupath_nuclei_import_onto_a_slide_and_export_to_the_same_geometry(
    campaign, client, shared_data
):
    client.force_login(campaign["manager"])
    path = shared_data / "annotations" / "training_set_primary_roi_101_nuclei.geojson"
    response = _import(client, campaign["project"].pk, campaign["slide"].pk, path)
    assert response.status_code == 201, response.content
    # Counted from the file itself: every feature is a polygon with classification.name.
    features = json.loads(path.read_text())["features"]
    names = {f["properties"]["classification"]["name"] for f in features}
    assert len(features) == 382 and len(names) == 8  # as the data README says
    report = response.json()
    assert report["imported"] == 382 and report["skipped"] == []
    rows = SlideAnnotation.objects.filter(slide=campaign["slide"], source="prior expert")
    assert rows.count() == 382
    classes = set(
        LabelClass.objects.filter(project=campaign["project"]).values_list("name", flat=True)
    )
    assert names <= classes
    for fmt in ("geojson", "asap", "aperio"):
        exported = client.get(
            f"/api/projects/{campaign['project'].pk}/export-annotations/",
            {"slide": campaign["slide"].pk, "format": fmt, "source": "imported"},
        )
        assert exported.status_code == 200
        again = _import(
            client,
            campaign["project"].pk,
            campaign["slide"].pk,
            _saved(exported.content, f"round.{'geojson' if fmt == 'geojson' else 'xml'}"),
            source=f"round-trip {fmt}",
        )
        assert again.status_code == 201, again.content
        back = SlideAnnotation.objects.filter(source=f"round-trip {fmt}")
        assert sorted(round(to_shape(r.geometry).area, 2) for r in back) == pytest.approx(
            sorted(round(to_shape(r.geometry).area, 2) for r in rows), abs=0.05
        )
        back.delete()  # the next export reads the original import alone


def _saved(content: bytes, name: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / name
    path.write_bytes(content)
    return path


def test_shapes_entirely_outside_the_slide_are_skipped_with_a_reason(campaign, client, shared_data):
    client.force_login(campaign["manager"])
    # qupath05's three polygons lie near x = 8-10k, y = 5-7k: outside the 2220 x 2967 slide.
    response = _import(
        client,
        campaign["project"].pk,
        campaign["slide"].pk,
        shared_data / "annotations" / "qupath05.geojson",
    )
    assert response.status_code == 201
    assert response.json()["imported"] == 0 and len(response.json()["skipped"]) == 3
    assert all("outside" in reason for reason in response.json()["skipped"])
    assert not SlideAnnotation.objects.exists()


def test_darwin_json_is_refused_with_a_clear_message(campaign, client, shared_data):
    client.force_login(campaign["manager"])
    response = _import(
        client,
        campaign["project"].pk,
        campaign["slide"].pk,
        shared_data / "annotations" / "darwin_v7_103S.json",
    )
    assert response.status_code == 400
    assert "Darwin" in response.json()["file"][0]
    assert not SlideAnnotation.objects.exists()


def test_import_over_the_size_cap_is_refused(campaign, client, shared_data, settings):
    settings.ANNOTATION_IMPORT_MAX_BYTES = 1024
    client.force_login(campaign["manager"])
    response = _import(
        client,
        campaign["project"].pk,
        campaign["slide"].pk,
        shared_data / "annotations" / "training_set_primary_roi_101_nuclei.geojson",
    )
    assert response.status_code == 400
    assert not SlideAnnotation.objects.exists()


def test_annotator_cannot_import_or_export(campaign, client, shared_data):
    client.force_login(campaign["students"][0])
    response = _import(
        client,
        campaign["project"].pk,
        campaign["slide"].pk,
        shared_data / "annotations" / "qupath05.geojson",
    )
    assert response.status_code == 404
    assert (
        client.get(
            f"/api/projects/{campaign['project'].pk}/export-annotations/",
            {"slide": campaign["slide"].pk},
        ).status_code
        == 404
    )
    assert not SlideAnnotation.objects.exists()
