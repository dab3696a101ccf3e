"""Merges through real Celery workers: twice, concurrently, killed mid-merge, after exclusion."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import ConsensusJob, ConsensusRun, LabelClass, Membership, Project
from annotation.services.members import member_exclude
from annotation.tasks import merge_region
from slides.models import Slide
from tests.annotation.merge_helpers import region, submit
from tests.factories import add_member, make_project, make_user
from tests.worker import LiveWorker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_worker]

# 2048 x 2048 working pixels at the slide's own resolution: a merge takes seconds, so a kill
# right after its "started" marker lands mid-merge.
BIG = 2048


@pytest.fixture
def campaign(db):
    """Like the package's campaign, on a slide row at 0.5 um/px (no file: merges read none).

    Ingesting a real slide here would race the live worker, which ingests it too.
    """
    manager = make_user("mgr")
    students = [make_user(f"s{i}") for i in range(3)]
    project = make_project(manager, target_mpp=0.5, redundancy_k=3, gold_mix_rate=0.0)
    for student in students:
        add_member(project, student, "annotator")
    slide = Slide.objects.create(
        name="merge",
        path="/nonexistent/merge.svs",
        status="ready",
        width=4000,
        height=4000,
        mpp_x=0.5,
        mpp_y=0.5,
    )
    project.slides.add(slide)
    tumour = LabelClass.objects.create(project=project, name="tumour", order=1)
    LabelClass.objects.create(project=project, name="none", order=0, is_background=True)
    return {
        "project": project,
        "slide": slide,
        "manager": manager,
        "students": students,
        "tumour": tumour,
    }


def _big_region(campaign: dict) -> object:
    project = campaign["project"]
    # k = 4 while three submit, so the submit hook does not queue a merge before the test does.
    Project.objects.filter(pk=project.pk).update(redundancy_k=4)
    project.refresh_from_db()
    reg = region(project, campaign["slide"], 0, 0, BIG)
    for user, x in zip(campaign["students"][:3], (100, 100, 140), strict=True):
        submit(reg, user, [(x, 100, 1500)], campaign["tumour"])
    Project.objects.filter(pk=project.pk).update(redundancy_k=3)
    assert not ConsensusRun.objects.exists()
    return reg


def _succeeded(worker: LiveWorker, task_id: str) -> bool:
    return f"[{task_id}] succeeded" in worker.log_tail(200_000)


def _files(region_id: int) -> tuple[list[Path], list[Path]]:
    folder = Path(settings.MEDIA_ROOT) / "consensus" / str(region_id)
    return sorted(folder.glob("*.npz")), sorted(folder.glob(".tmp-*"))


def test_merge_run_concurrently_on_two_workers_and_again_leaves_one_run(
    live_worker, campaign, tmp_path
):
    reg = _big_region(campaign)
    workers = [
        LiveWorker(live_worker.env, tmp_path / f"merge-{q}.log", queues=f"merge-{q}", name=q)
        for q in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    try:
        ids = [merge_region.apply_async(args=[reg.pk], queue=f"merge-{q}").id for q in ("a", "b")]
        for worker, task_id in zip(workers, ids, strict=True):
            wait_for(lambda w=worker, t=task_id: _succeeded(w, t), 90, 0.2, "both merges")
    finally:
        for worker in workers:
            worker.stop()
    # Both claimed an attempt (neither found the other's run when it started): they overlapped.
    job = ConsensusJob.objects.get(region=reg)
    assert job.attempts == 2
    assert ConsensusRun.objects.filter(region=reg).count() == 1
    run = ConsensusRun.objects.get(region=reg)
    assert run.status == "accepted"  # Dice (1 + 2 * 2*1460/3000) / 3 = 0.9822

    # Once more through the session worker: a no-op that does not even claim an attempt.
    again = merge_region.delay(reg.pk).id
    wait_for(lambda: _succeeded(live_worker, again), 90, 0.2, "the repeated merge")
    assert ConsensusRun.objects.filter(region=reg).count() == 1
    assert ConsensusJob.objects.get(region=reg).attempts == 2
    npz, temps = _files(reg.pk)
    assert [p.relative_to(settings.MEDIA_ROOT).as_posix() for p in npz] == [run.arrays_path]
    assert temps == []


def test_pool_child_killed_mid_merge_still_ends_with_one_run(live_worker, campaign):
    reg = _big_region(campaign)
    merge_region.delay(reg.pk)

    def started() -> bool:
        return ConsensusJob.objects.filter(region=reg, attempts=1).exists()

    wait_for(started, 60, 0.02, "the merge to start")
    assert not ConsensusRun.objects.filter(region=reg).exists()
    killed = live_worker.kill_pool_child()
    wait_for(
        lambda: ConsensusRun.objects.filter(region=reg).exists(),
        120,
        0.2,
        "the redelivered merge to publish",
    )
    assert ConsensusRun.objects.filter(region=reg).count() == 1
    assert ConsensusJob.objects.get(region=reg).attempts == 2  # the killed run and the retry
    assert killed not in live_worker.pool_children()
    npz, temps = _files(reg.pk)
    assert len(npz) == 1 and temps == []


def test_excluding_an_annotator_triggers_a_new_run_without_them(live_worker, campaign):
    project = campaign["project"]
    reg = region(project, campaign["slide"])
    students, tumour = campaign["students"], campaign["tumour"]
    subs = [
        submit(reg, students[0], [(1010, 1010, 40)], tumour),
        submit(reg, students[1], [(1010, 1010, 40)], tumour),
        submit(reg, students[2], [(1050, 1050, 40)], tumour),
    ]  # the third queues the merge
    wait_for(lambda: ConsensusRun.objects.filter(region=reg).exists(), 60, 0.1, "the first run")
    first = ConsensusRun.objects.get(region=reg)
    assert len(first.inputs) == 3

    membership = Membership.objects.get(project=project, user=students[2])
    member_exclude(membership=membership, by=campaign["manager"], reason="careless outlines")
    wait_for(
        lambda: ConsensusRun.objects.filter(region=reg).count() == 2,
        60,
        0.1,
        "the re-merge after the exclusion",
    )
    second = ConsensusRun.objects.filter(region=reg).exclude(pk=first.pk).get()
    assert [i[0] for i in second.inputs] == [subs[0].pk, subs[1].pk]
    assert students[2].pk not in {s["annotator"] for s in second.rater_scores}
    assert second.status == "accepted"
