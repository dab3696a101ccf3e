"""The project dashboard: agreement, where regions wait, experts' load, annotators (per role)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from annotation.selectors_dashboard import RECENT_DAYS, dashboard_for


def _url_or(name: str, fallback: str, **kwargs: int) -> str:
    """The named page where it is routed, else ``fallback`` (pages of work not yet included)."""
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return reverse(fallback, kwargs={"pk": next(iter(kwargs.values()))})


@login_required
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    """Members only (404 otherwise); each section is cut to what the member's role may read."""
    dashboard = dashboard_for(request.user, project_id)
    queue_rows, queue_url = [], None
    if dashboard.expert is not None:
        # The expert's page where adjudication is routed; else the consensus API's JSON.
        queue_rows = [
            (run, _url_or("adjudicate-region", "region-consensus", region_id=run.region_id))
            for run in dashboard.expert.preview
        ]
        queue_url = _url_or(
            "adjudication-queue-page", "project-adjudication-queue", project_id=project_id
        )
    context = {
        "dashboard": dashboard,
        "project": dashboard.project,
        "recent_days": RECENT_DAYS,
        "gold_values": [g.dice for g in dashboard.gold or []],
        "queue_rows": queue_rows,
        "queue_url": queue_url,
    }
    return render(request, "annotation/dashboard.html", context)
