"""The exports API and page: who may request, list, read and download (404 for the rest), and
that a refused request writes nothing."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.urls import reverse

from learning.exports.services import export_build
from learning.models import ExportStatus, TrainingExport
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]


@pytest.fixture
def ready(export_world):
    export = TrainingExport.objects.create(
        project=export_world["project"], config={"patch_size": 128}
    )
    export = export_build(export_id=export.pk)
    assert export.status == ExportStatus.READY
    return {**export_world, "export": export, "outsider": make_user("outsider")}


def _urls(world: dict) -> dict[str, str]:
    pk, project = world["export"].pk, world["project"].pk
    return {
        "list": reverse("project-training-exports", kwargs={"project_pk": project}),
        "detail": reverse("training-export-detail", kwargs={"pk": pk}),
        "download": reverse("training-export-download", kwargs={"pk": pk}),
        "lineage": reverse("training-export-lineage", kwargs={"pk": pk}),
        "page": reverse("exports:page", kwargs={"project_id": project}),
    }


@pytest.mark.parametrize("who", ["annotator", "outsider", "expert"])
def test_an_annotator_or_a_non_member_can_neither_list_nor_download_exports(ready, client, who):
    user = {
        "annotator": ready["annotators"][0],
        "outsider": ready["outsider"],
        "expert": ready["expert"],
    }[who]
    client.force_login(user)
    for name, url in _urls(ready).items():
        assert client.get(url).status_code == 404, name
    before = TrainingExport.objects.count()
    response = client.post(
        _urls(ready)["list"], {"patch_size": 64}, content_type="application/json"
    )
    assert response.status_code == 404
    page = client.post(_urls(ready)["page"], {"patch_size": 64})
    assert page.status_code == 404
    assert TrainingExport.objects.count() == before


def test_anonymous_callers_are_refused(ready, client):
    urls = _urls(ready)
    assert client.get(urls["list"]).status_code == 401
    assert client.get(urls["download"]).status_code == 401
    assert client.get(urls["page"]).status_code == 302


@pytest.mark.parametrize("who", ["researcher", "manager"])
def test_researchers_and_managers_list_read_and_download(ready, client, who):
    client.force_login(ready[who])
    urls = _urls(ready)
    listed = client.get(urls["list"]).json()
    assert [e["id"] for e in listed] == [ready["export"].pk]
    assert listed[0]["export_hash"] == ready["export"].export_hash
    response = client.get(urls["download"])
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "manifest.json" in archive.namelist()
    lineage = client.get(urls["lineage"]).json()
    assert sorted(r["id"] for r in lineage["consensus_runs"]) == sorted(r.pk for r in ready["runs"])
    submissions = {a["submission"] for r in lineage["consensus_runs"] for a in r["annotations"]}
    assert len(submissions) == 3 * len(ready["runs"])
    assert all(
        a["annotator"].startswith("annotator-")
        for r in lineage["consensus_runs"]
        for a in r["annotations"]
    )
    page = client.get(urls["page"])
    assert page.status_code == 200 and b'data-testid="export-row"' in page.content


def test_a_researcher_requests_an_export_and_a_bad_choice_is_refused(ready, client):
    client.force_login(ready["researcher"])
    url = _urls(ready)["list"]
    before = TrainingExport.objects.count()
    bad = client.post(
        url, json.dumps({"fractions": [0.5, 0.2, 0.2]}), content_type="application/json"
    )
    assert bad.status_code == 400 and "sum to 1" in bad.json()["detail"]
    stray = client.post(url, json.dumps({"class_ids": [999999]}), content_type="application/json")
    assert stray.status_code == 400
    assert TrainingExport.objects.count() == before
    made = client.post(
        url,
        json.dumps({"class_ids": [ready["gland"].pk], "patch_size": 64, "seed": 5}),
        content_type="application/json",
    )
    assert made.status_code == 201
    body = made.json()
    assert body["status"] == "queued" and body["download"] is None
    assert body["config"]["class_ids"] == [ready["gland"].pk] and body["config"]["stride"] == 64
    row = TrainingExport.objects.get(pk=body["id"])
    assert row.requested_by == ready["researcher"]
    pending = client.get(reverse("training-export-download", kwargs={"pk": row.pk}))
    assert pending.status_code == 409


def test_the_research_api_reports_agreement_reliability_and_model_versions(ready, client):
    client.force_login(ready["researcher"])
    project = ready["project"].pk
    agreement = client.get(
        reverse("project-research-agreement", kwargs={"project_pk": project})
    ).json()
    assert sorted(r["run"] for r in agreement["regions"]) == sorted(r.pk for r in ready["runs"])
    assert agreement["mean_dice"] == pytest.approx(
        sum(r.dice for r in ready["runs"]) / len(ready["runs"]), abs=1e-6
    )
    assert len(agreement["annotators"]) == 3
    text = json.dumps(agreement)
    assert not any(u.username in text for u in ready["annotators"])
    versions = client.get(
        reverse("project-research-model-versions", kwargs={"project_pk": project})
    )
    assert versions.status_code == 200 and versions.json() == []
    client.force_login(ready["annotators"][0])
    assert (
        client.get(
            reverse("project-research-agreement", kwargs={"project_pk": project})
        ).status_code
        == 404
    )


def test_model_versions_trained_on_the_exported_answers_are_in_the_lineage(export_world, client):
    from learning.models import ModelVersion, TrainingRun

    world = export_world
    runs = world["runs"]

    def version(number: int, run_ids: list[int]) -> ModelVersion:
        training = TrainingRun.objects.create(project=world["project"], status="finished")
        return ModelVersion.objects.create(
            project=world["project"],
            number=number,
            training_run=training,
            weights_path=f"models/v{number}.pt",
            weights_sha256="0" * 64,
            dataset_hash=f"dataset-{number}",
            consensus_runs=run_ids,
            target_mpp=0.5,
            patch_size=256,
            metrics={"mean_dice": 0.5 + number / 10},
        )

    used = version(1, [runs[0].pk, runs[1].pk])
    version(2, [987654])  # trained on answers this export does not hold
    export = TrainingExport.objects.create(project=world["project"], config={"patch_size": 128})
    export = export_build(export_id=export.pk)
    assert export.model_versions == [used.pk]
    from tests.learning.export_helpers import open_archive

    manifest = json.loads(open_archive(export).read("manifest.json"))
    assert [(v["number"], v["metrics"]) for v in manifest["model_versions"]] == [
        (1, {"mean_dice": 0.6})
    ]
    assert manifest["model_versions"][0]["shared_consensus_runs"] == sorted(
        [runs[0].pk, runs[1].pk]
    )
    client.force_login(world["researcher"])
    lineage = client.get(reverse("training-export-lineage", kwargs={"pk": export.pk})).json()
    assert [v["number"] for v in lineage["model_versions"]] == [1]
    listed = client.get(
        reverse("project-research-model-versions", kwargs={"project_pk": world["project"].pk})
    ).json()
    assert [(v["number"], v["dataset_hash"]) for v in listed] == [
        (1, "dataset-1"),
        (2, "dataset-2"),
    ]
