"""List filters that take related ids as plain numbers.

django-filter's default for a relation is a choice over *every* row of the related table:
``?project=<id of someone else's project>`` then answers 200 while a missing id answers 400 (an
oracle for which ids exist), and an id past 64 bits crashes the lookup on SQLite. Here a
relation filter is a bounded integer: any id filters the caller's already-scoped queryset,
existing or not, and an id no row can have is a 400.
"""

from __future__ import annotations

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """A related object's id, 1 .. 2**63 - 1."""

    field_class = forms.IntegerField

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilterSet(filters.FilterSet):
    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.ManyToManyField: {"filter_class": IdFilter},
        models.OneToOneRel: {"filter_class": IdFilter},
        models.ManyToOneRel: {"filter_class": IdFilter},
        models.ManyToManyRel: {"filter_class": IdFilter},
    }


class IdFilterBackend(filters.DjangoFilterBackend):
    """DRF's default filter backend here: ``filterset_fields`` build an :class:`IdFilterSet`."""

    filterset_base = IdFilterSet
