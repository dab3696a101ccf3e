"""One simulated campaign (one project, one strategy, one seed) through the live system.

Set-up is what a manager does on the set-up page (project, classes, members: the services,
in-process); slides are registered and regions seeded over the API; from then on the people act
only over HTTP. Waiting for the worker and scoring read the database (evaluation only).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model

from annotation.models import (
    ConsensusJob,
    ConsensusRun,
    LabelClass,
    Project,
    Region,
    RegionOrigin,
    Role,
    Submission,
    SubmissionStatus,
)
from annotation.services.merge import merge_inputs
from annotation.services.projects import membership_set, project_create
from learning.simulation.client import Client
from learning.simulation.evaluate import Tally, evaluate_round, labelled_area_mm2, unanswered
from learning.simulation.live import LiveSystem
from learning.simulation.people import Crowd, timed
from learning.simulation.profiles import Person, Scale
from learning.simulation.rounds import RoundDriver
from learning.simulation.truth import GroundTruth
from slides.models import Slide, SlideStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideInput:
    path: Path
    truth: GroundTruth


@dataclass
class CampaignResult:
    strategy: str
    seed: int
    project_id: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    reliability: list[dict[str, Any]] = field(default_factory=list)
    students: dict[str, dict[str, Any]] = field(default_factory=dict)
    learning_available: bool = False
    notes: list[str] = field(default_factory=list)


def ensure_user(username: str, password: str, staff: bool = False) -> Any:
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = staff
    user.email = f"{username}@example.org"
    user.save()
    return user


def _wait(predicate: Any, timeout: float, what: str, check: Any) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _pending_merges(project: Project) -> int:
    """Regions whose submissions are all in but whose merge of them has not landed yet."""
    pending = 0
    for region in Region.objects.filter(project=project).exclude(origin=RegionOrigin.GOLD):
        submitted = Submission.objects.filter(
            region=region, status=SubmissionStatus.SUBMITTED
        ).count()
        if submitted < project.redundancy_k + region.extra_slots:
            continue
        digest = merge_inputs(region=region).inputs_hash
        if ConsensusRun.objects.filter(region=region, inputs_hash=digest).exists():
            continue
        failed = ConsensusJob.objects.filter(region=region, inputs_hash=digest).exclude(
            failed_reason=""
        )
        if not failed.exists():
            pending += 1
    return pending


class Campaign:
    def __init__(
        self,
        *,
        system: LiveSystem,
        scale: Scale,
        strategy: str,
        seed: int,
        slides: list[SlideInput],
        classes: list[str],
        students: list[Person],
        experts: list[Person],
        passwords: dict[str, str],
        slug: str,
    ) -> None:
        self.system, self.scale, self.strategy, self.seed = system, scale, strategy, seed
        self.slides, self.classes = slides, classes
        self.students, self.experts, self.passwords = students, experts, passwords
        self.slug = slug
        self.result = CampaignResult(strategy=strategy, seed=seed, project_id=0)
        self.pooled: dict[str, float | None] = {}
        self.driver: RoundDriver | None = None

    # --- set-up (the manager's set-up page) ------------------------------------------------

    def _setup(self, manager_name: str) -> tuple[Project, dict[str, int]]:
        User = get_user_model()
        manager = User.objects.get(username=manager_name)
        project = project_create(
            name=f"Simulation {self.slug}",
            slug=self.slug,
            target_mpp=self.scale.target_mpp,
            created_by=manager,
            description="A simulated crowd (manage.py simulate_campaign).",
        )
        project.redundancy_k = self.scale.k
        project.redundancy_k_max = self.scale.k + 2
        project.region_size = self.scale.region_size
        project.round_size = self.scale.round_size
        project.round_quota = 1.0
        project.gold_mix_rate = 0.0
        project.qualification_gold_regions = 0
        project.strategy = self.strategy
        project.auto_rounds = True
        project.save()
        LabelClass.objects.create(project=project, name="background", order=0, is_background=True)
        ids = {}
        for i, name in enumerate(self.classes, start=1):
            ids[name] = LabelClass.objects.create(project=project, name=name, order=i).pk
        for person in self.students:
            membership_set(
                project=project,
                user=User.objects.get(username=person.username),
                role=Role.ANNOTATOR,
            )
        for person in self.experts:
            membership_set(
                project=project, user=User.objects.get(username=person.username), role=Role.EXPERT
            )
        return project, ids

    # --- the campaign --------------------------------------------------------------------

    def run(self, manager_name: str) -> CampaignResult:
        url = self.system.url
        check = self.system.check
        project, class_ids = self._setup(manager_name)
        self.result.project_id = project.pk
        manager = Client(url, manager_name, self.passwords[manager_name])
        truth: dict[int, GroundTruth] = {}
        for slide_input in self.slides:
            reply = manager.post(
                f"/api/projects/{project.pk}/slides/", {"path": str(slide_input.path)}
            )
            truth[reply.data["id"]] = slide_input.truth
        _wait(
            lambda: not Slide.objects.filter(pk__in=truth, status=SlideStatus.PENDING).exists(),
            600,
            "slide ingest",
            check,
        )
        failed = list(Slide.objects.filter(pk__in=truth, status=SlideStatus.FAILED))
        if failed:
            raise RuntimeError(f"ingest failed: {[(s.name, s.status_reason) for s in failed]}")
        for slide in Slide.objects.filter(pk__in=truth, mpp_x__isnull=True, mpp_y__isnull=True):
            # A file without its resolution: the manager enters it (--slide-mpp).
            manager.post(f"/api/slides/{slide.pk}/set-mpp/", {"mpp": self.scale.slide_mpp})
        manager.post(
            f"/api/projects/{project.pk}/seed-regions/",
            {"per_slide": self.scale.regions_per_slide, "seed": self.seed, "min_tissue": 0.5},
        )
        rng = np.random.default_rng(self.seed)
        crowd = Crowd(
            project_id=project.pk,
            classes=self.classes,
            class_ids=class_ids,
            downsample={
                s.pk: self.scale.target_mpp / (s.mpp or self.scale.slide_mpp)
                for s in Slide.objects.filter(pk__in=truth)
            },
            truth=truth,
            students=[
                (p, Client(url, p.username, self.passwords[p.username])) for p in self.students
            ],
            experts=[
                (p, Client(url, p.username, self.passwords[p.username])) for p in self.experts
            ],
            rng=rng,
        )
        driver = RoundDriver(manager, project.pk)
        self.driver = driver
        self.result.learning_available = driver.available()
        if not self.result.learning_available:
            self.result.notes.append(
                "The rounds API (GET /api/projects/{id}/rounds/) answered 404: training, scoring "
                "and proposals are not available, so the campaign stops after round 0."
            )
        everything = Tally(len(self.classes) + 1)
        for number in range(self.scale.rounds):
            record = self._annotate_round(project, crowd, number, check)
            record.update(
                evaluate_round(
                    project=project,
                    round_number=number,
                    truth=truth,
                    reliability=self._reliability(manager, project.pk, record),
                    tally_all=everything,
                )
            )
            record["labelled_regions"], record["labelled_area_mm2"] = labelled_area_mm2(project)
            record["all_stage_seconds"] = dict(record["stage_seconds"])
            if self.result.learning_available:
                outcome = driver.finish(number, timeout=self._round_timeout(), check=check)
                record["learning"] = outcome.__dict__
                record["model_version"] = outcome.model_version
                for name, seconds in outcome.stage_seconds.items():
                    if isinstance(seconds, int | float):
                        record["all_stage_seconds"][name] = float(seconds)
                if outcome.state != "done":
                    self.result.notes.append(
                        f"Round {number} ended in state {outcome.state!r}: {outcome.failed_reason}"
                    )
                    self.result.rounds.append(record)
                    break
                proposed = Region.objects.filter(project=project, round_number=number + 1)
                record["proposed_regions"] = proposed.count()
                if number + 1 < self.scale.rounds and not record["proposed_regions"]:
                    self.result.notes.append(
                        f"Round {number} finished but proposed no regions for round {number + 1}."
                    )
                    self.result.rounds.append(record)
                    break
            self.result.rounds.append(record)
            if not self.result.learning_available:
                break
        self._students_summary(everything)
        return self.result

    def _round_timeout(self) -> float:
        return 900.0 if self.scale.name in ("ci", "quick") else 3600.0

    def _annotate_round(
        self, project: Project, crowd: Crowd, number: int, check: Any
    ) -> dict[str, Any]:
        stage = {"annotate": 0.0, "merge": 0.0, "adjudicate": 0.0}
        submitted_before = crowd.submitted
        adjudicated = 0
        for _ in range(12):
            done, seconds = timed(lambda: crowd.students_pass(check))
            stage["annotate"] += seconds
            start = time.monotonic()
            _wait(lambda: _pending_merges(project) == 0, 600, "merges", check)
            stage["merge"] += time.monotonic() - start
            decided, seconds = timed(crowd.experts_pass)
            stage["adjudicate"] += seconds
            adjudicated += decided
            if decided:
                time.sleep(0.5)
            if not unanswered(project, number):
                break
            if not done and not decided:
                time.sleep(1.0)  # extra slots may appear after a merge asked for more
        missing = unanswered(project, number)
        if missing:
            self.result.notes.append(f"Round {number}: regions {missing} never got an answer.")
        return {
            "stage_seconds": stage,
            "submissions": crowd.submitted - submitted_before,
            "adjudicated": adjudicated,
        }

    def _reliability(
        self, manager: Client, project_id: int, record: dict[str, Any]
    ) -> dict[str, float]:
        """Estimated reliability per student from the API: (sensitivity + specificity) / 2."""
        rows = manager.get(f"/api/projects/{project_id}/reliability/") or []
        if isinstance(rows, dict):
            rows = rows.get("results", [])
        estimated: dict[str, float] = {}
        for row in rows:
            if row.get("source") != "staple" and row.get("username") in estimated:
                continue
            sens, spec = row.get("sensitivity"), row.get("specificity")
            if sens is not None and spec is not None:
                estimated[row["username"]] = (float(sens) + float(spec)) / 2
        record["estimated_reliability"] = estimated
        return estimated

    def _students_summary(self, everything: Tally) -> None:
        from learning.simulation.metrics import balanced_accuracy, dice_from_counts

        students = {u: dice_from_counts(c) for u, c in everything.students.items()}
        values = np.array([v for v in students.values() if np.isfinite(v)])
        self.pooled = {m: dice_from_counts(c) for m, c in everything.methods.items()}
        self.pooled["median_student_overall"] = float(np.median(values)) if values.size else None
        self.pooled["best_student_overall"] = float(values.max()) if values.size else None

        last = self.result.rounds[-1].get("estimated_reliability", {}) if self.result.rounds else {}
        for person in self.students:
            counts = everything.students.get(person.username)
            self.result.students[person.username] = {
                "kind": person.kind,
                "true_dice": dice_from_counts(counts) if counts is not None else float("nan"),
                "true_reliability": (
                    balanced_accuracy(counts) if counts is not None else float("nan")
                ),
                "estimated": last.get(person.username, float("nan")),
            }
