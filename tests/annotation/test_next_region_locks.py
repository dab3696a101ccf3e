"""Next-region under row locks (PostgreSQL): a caller holds one candidate, never the whole list.

Each test keeps one caller's transaction open after it took its slot, as a slow request would,
and sets a lock timeout on the other caller, so that waiting where it should not shows up as an
error instead of a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from annotation.models import Assignment, Project, Region
from annotation.services.assignments import assignment_next


@pytest.fixture
def postgres_only(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no row locks (it serialises writers instead)")


def _regions(campaign: dict, count: int) -> list[Region]:
    return [
        Region.objects.create(
            project=campaign["project"],
            slide=campaign["slide"],
            x=100 + 520 * (i % 2),
            y=100 + 520 * (i // 2),
            width=513,
            height=513,
            origin="seeded",
        )
        for i in range(count)
    ]


class Holder(threading.Thread):
    """Takes a slot inside a transaction and keeps it open until ``release`` is set."""

    def __init__(self, project: Project, user: object) -> None:
        super().__init__(daemon=True)
        self.project, self.user = project, user
        self.holding, self.release = threading.Event(), threading.Event()
        self.assignment: Assignment | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.assignment = assignment_next(project=self.project, user=self.user)
                self.holding.set()
                self.release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.holding.set()
        finally:
            connection.close()


def _with_lock_timeout(call: Callable[[], Assignment | None], seconds: int) -> Assignment | None:
    """``call`` in a transaction whose lock waits end in an error after ``seconds``."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{seconds}s'")
        return call()


@pytest.mark.django_db(transaction=True)
def test_a_caller_holding_its_region_does_not_block_the_next_caller(campaign, postgres_only):
    project = campaign["project"]
    _regions(campaign, 3)
    first, second = campaign["students"][:2]
    holder = Holder(project, first)
    holder.start()
    assert holder.holding.wait(30) and holder.error is None, holder.error
    try:
        started = time.monotonic()
        # Locking the whole candidate list would leave nothing to skip to: this call would wait
        # for the holder and fail on the lock timeout.
        mine = _with_lock_timeout(lambda: assignment_next(project=project, user=second), 3)
        waited = time.monotonic() - started
    finally:
        holder.release.set()
        holder.join(30)
    assert holder.error is None, holder.error
    assert mine is not None and waited < 2, waited
    assert mine.region_id != holder.assignment.region_id
    assert Assignment.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_when_every_candidate_is_held_the_caller_waits_and_recounts(campaign, postgres_only):
    project = campaign["project"]
    Project.objects.filter(pk=project.pk).update(redundancy_k=2)
    project.refresh_from_db()
    (region,) = _regions(campaign, 1)
    first, second, third = campaign["students"][:3]
    holder = Holder(project, first)
    holder.start()
    assert holder.holding.wait(30) and holder.error is None, holder.error
    results: dict[str, Assignment | None] = {}

    def ask() -> None:
        try:
            results["second"] = assignment_next(project=project, user=second)
        finally:
            connection.close()

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(1)
    # The only region is held, not full: "nothing left" would be wrong, so the caller waits.
    assert asker.is_alive() and not results
    holder.release.set()
    holder.join(30)
    asker.join(30)
    assert holder.error is None, holder.error
    assert results["second"] is not None and results["second"].region_id == region.pk
    # k = 2 slots are now taken: the third student is told nothing is left, no third slot.
    assert assignment_next(project=project, user=third) is None
    assert Assignment.objects.filter(region=region).count() == 2
    assert len(set(Assignment.objects.values_list("region", "annotator"))) == 2
