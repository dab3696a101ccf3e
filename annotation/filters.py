"""List filters of the campaign API that must not become an oracle for gold regions."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from annotation.models import Region, RegionOrigin, RegionStatus
from annotation.selectors import project_ids_seeing_origin
from config.filters import IdFilterSet


class RegionFilterSet(IdFilterSet):
    """``origin``, ``round_number`` and ``status`` filter only the regions of projects where the
    caller may tell gold regions apart (not as an annotator).

    Where the caller annotates, any value of these filters matches none of those regions, so
    ``?origin=gold`` and ``?origin=manual`` (or any round or status) answer alike: the filter
    says nothing about which of their regions are gold. Unfiltered lists are unchanged.
    """

    origin = filters.ChoiceFilter(choices=RegionOrigin.choices, method="_within_origin_projects")
    round_number = filters.NumberFilter(
        min_value=0, max_value=2**31 - 1, method="_within_origin_projects"
    )
    status = filters.ChoiceFilter(choices=RegionStatus.choices, method="_within_origin_projects")

    class Meta:
        model = Region
        fields = ["project", "slide", "origin", "round_number", "status"]

    def _within_origin_projects(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        visible = project_ids_seeing_origin(self.request.user)
        return queryset.filter(project_id__in=visible, **{name: value})
