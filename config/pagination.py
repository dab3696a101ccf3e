"""List pagination with bounds: ``?limit=`` at most MAX_LIMIT, ``?offset=`` clamped.

DRF's LimitOffsetPagination passes any positive integer to the database; SQLite answers a
limit or offset past 64 bits with "datatype mismatch" (a 500), and an unbounded limit lets one
request read a whole table.
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
MAX_OFFSET = 10**15  # past any table's size: an offset beyond it reads nothing either way


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """LimitOffsetPagination, ``limit`` capped at MAX_LIMIT and ``offset`` at MAX_OFFSET."""

    max_limit = MAX_LIMIT

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
