"""Two projects side by side: every role in A, an outsider who manages B, and B's own objects.

Security tests send A's members requests that name B's objects (ids in URLs, bodies and query
strings) and compare a dump of the tables before and after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.apps import apps
from rest_framework.authtoken.models import Token

from annotation.models import LabelClass, Membership, Region
from annotation.services.assignments import assignment_next
from slides.models import Slide
from tests.factories import add_member, ingested_slide, make_project, make_user

ROLES = ("manager", "expert", "annotator", "researcher")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's million rounds cost ~0.3 s a user on this machine; these tests check access,
    # not hashing. Logins through the forms still verify the (MD5-hashed) password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


_INGESTED: dict[Path, dict] = {}


def _slide(path: Path, project: object) -> Slide:
    """An ingested slide; the second time a path is asked for, a copy of the first ingest's
    row (its thumbnail and mask files stay under the session's media folder)."""
    if path not in _INGESTED:
        slide = ingested_slide(path, project)
        _INGESTED[path] = {
            k: v for k, v in Slide.objects.filter(pk=slide.pk).values().get().items()
            if k not in ("id", "created_at", "updated_at", "created_by_id")
        }  # fmt: skip
        return slide
    slide = Slide.objects.create(**_INGESTED[path])
    project.slides.add(slide)
    return slide


@pytest.fixture
def two_projects(db, slides_dir, settings):
    settings.TILE_PREBUILD_MAX_TILES = 0  # tiles render on demand; ingest stays fast
    users = {role: make_user(role) for role in (*ROLES, "outsider", "b_annotator")}
    a = make_project(users["manager"], target_mpp=1.0, region_size=256, redundancy_k=1)
    for role in ROLES[1:]:
        add_member(a, users[role], role)
    b = make_project(users["outsider"], target_mpp=1.0, region_size=256, redundancy_k=1)
    add_member(b, users["b_annotator"], "annotator")
    slide_a = _slide(slides_dir / "cmu-1-small-region.svs", a)
    slide_b = _slide(slides_dir / "hamamatsu-dapi.ndpi", b)
    class_a = LabelClass.objects.create(project=a, name="tumour", color="#ff0000")
    class_b = LabelClass.objects.create(project=b, name="tumour", color="#ff0000")
    region_a = Region.objects.create(
        project=a, slide=slide_a, x=200, y=200, width=513, height=513, origin="seeded"
    )
    region_b = Region.objects.create(
        project=b, slide=slide_b, x=0, y=0, width=256, height=256, origin="seeded"
    )
    assignment_a = assignment_next(project=a, user=users["annotator"])
    assignment_b = assignment_next(project=b, user=users["b_annotator"])
    assert assignment_a is not None and assignment_b is not None
    return {
        "users": users,
        "a": a,
        "b": b,
        "slide_a": slide_a,
        "slide_b": slide_b,
        "class_a": class_a,
        "class_b": class_b,
        "region_a": region_a,
        "region_b": region_b,
        "assignment_a": assignment_a,
        "assignment_b": assignment_b,
        "member_b": Membership.objects.get(project=b, user=users["b_annotator"]),
        "tokens": {name: Token.objects.create(user=u).key for name, u in users.items()},
    }


def table_dump() -> str:
    """Every row of the apps' tables (and the users and tokens), as text."""
    from django.contrib.auth import get_user_model

    rows: dict[str, list] = {}
    for label in ("slides", "annotation", "learning"):
        for model in apps.get_app_config(label).get_models():
            rows[f"{label}.{model.__name__}"] = list(model.objects.order_by("pk").values())
    # last_login moves with every login of the test's callers; everything else must not.
    rows["users"] = list(get_user_model().objects.order_by("pk").values())
    for row in rows["users"]:
        row.pop("last_login", None)
    rows["tokens"] = list(Token.objects.order_by("pk").values())
    return json.dumps(rows, default=str, sort_keys=True)


def tree(*roots: Path) -> set[str]:
    """Every path under ``roots`` (files, directories and links), for before/after listings."""
    found: set[str] = set()
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                found.add(str(Path(dirpath, name)))
    return found


# --- switching a protection off, to show the tests catch it (BROKEN_SETTINGS.md) ------------
#
# SECURITY_BREAK=csrf,login_throttle,... runs the tests with those protections removed; each
# test guarding one must then fail. Warning filters are reset by pytest around every test
# phase, so the bomb filter is switched off from inside the test (break_bomb_filter()).

BREAKS = set(filter(None, os.environ.get("SECURITY_BREAK", "").split(",")))


@pytest.fixture(autouse=True)
def _broken_protections(request, monkeypatch):
    if not BREAKS:
        yield
        return
    from django.conf import settings

    from annotation.auth_api import TokenView

    if "csrf" in BREAKS:
        from rest_framework.authentication import SessionAuthentication

        monkeypatch.setattr(
            settings,
            "MIDDLEWARE",
            [m for m in settings.MIDDLEWARE if m != "django.middleware.csrf.CsrfViewMiddleware"],
        )
        monkeypatch.setattr(SessionAuthentication, "enforce_csrf", lambda self, request: None)
    if "login_throttle" in BREAKS:
        monkeypatch.setattr(settings, "LOGIN_FAILURES_MAX", 10**9)
    if "token_throttle" in BREAKS:  # the token endpoint checks passwords around the guard
        import rest_framework.authtoken.serializers as token_serializers
        from django.contrib.auth.backends import ModelBackend

        monkeypatch.setattr(
            token_serializers,
            "authenticate",
            lambda request=None, **credentials: ModelBackend().authenticate(request, **credentials),
        )
    if "login_shared" in BREAKS:  # counters in each process's memory (login_processes.py)
        from annotation import login_guard
        from tests.security.login_processes import ProcessLocalCounters

        monkeypatch.setattr(login_guard, "COUNTERS", ProcessLocalCounters())
    if "forwarded_for" in BREAKS:  # the client's own X-Forwarded-For names it (DRF's default)
        from annotation import login_guard

        monkeypatch.setattr(
            login_guard,
            "client_address",
            lambda request: (
                request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
                or request.META["REMOTE_ADDR"]
            ),
        )
    if "address_lock" in BREAKS:  # an address's limit falls on every account behind it
        from annotation import login_guard

        monkeypatch.setattr(login_guard, "_address_limit_applies", lambda failures: True)
    if "login_backoff" in BREAKS:  # the delay stays at its base: no doubling
        from annotation.login_guard import Policy

        monkeypatch.setattr(
            Policy, "delay", lambda self, count: self.base if count >= self.threshold else 0.0
        )
    if "token_on_password_change" in BREAKS:  # the signal that revokes tokens, disconnected
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from annotation import credentials

        post_save.disconnect(
            sender=get_user_model(),
            dispatch_uid="annotation.credentials.revoke_tokens_on_password_change",
        )
        request.addfinalizer(credentials.connect)
    if "reset_throttle" in BREAKS:
        import annotation.auth_pages

        monkeypatch.setattr(annotation.auth_pages, "reset_email_wait", lambda request, email: None)
    if "token_revoke" in BREAKS:
        from rest_framework.response import Response

        monkeypatch.setattr(TokenView, "delete", lambda self, request: Response(status=204))
    if "body_413" in BREAKS:  # Django's own answer: a 400 wherever the body is read
        import config.urls
        from config.bodylimit import BodySizeLimitMiddleware

        passthrough = lambda self, request: self.get_response(request)  # noqa: E731
        monkeypatch.setattr(BodySizeLimitMiddleware, "__call__", passthrough)
        monkeypatch.setattr(config.urls, "handler400", "django.views.defaults.bad_request")
    if "csp" in BREAKS:  # no Content-Security-Policy header (tests/browser/conftest.py too)
        from csp.middleware import CSPMiddleware

        monkeypatch.setattr(CSPMiddleware, "process_response", lambda self, request, resp: resp)
    if "json_depth" in BREAKS:
        from rest_framework.parsers import JSONParser

        from config.parsers import SafeJSONParser

        monkeypatch.setattr(SafeJSONParser, "parse", JSONParser.parse)
    if "id_range" in BREAKS:
        monkeypatch.setattr(
            settings,
            "MIDDLEWARE",
            [m for m in settings.MIDDLEWARE if m != "config.errors.IdRangeMiddleware"],
        )
    if "id_filters" in BREAKS:
        from django_filters.rest_framework import DjangoFilterBackend
        from rest_framework.generics import GenericAPIView

        monkeypatch.setattr(GenericAPIView, "filter_backends", [DjangoFilterBackend])
    if "thumb_guard" in BREAKS:
        monkeypatch.setattr(settings, "SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS", 10**15)
    if "assignment_state" in BREAKS:
        import annotation.services.submissions as submissions

        monkeypatch.setattr(submissions, "_lock_open_assignment", lambda assignment: assignment)
    if "gold_oracle" in BREAKS:
        # Back to the audited rule: origins for anyone with a non-annotator role anywhere, the
        # provenance filters over every visible region, the gold score in every answer.
        import annotation.api_campaign as api_campaign
        import annotation.serializers_campaign as serializers_campaign
        from annotation.filters import RegionFilterSet
        from annotation.models import Membership, Project

        def any_role_sees(user: object) -> set[int]:
            if not Membership.objects.filter(user=user).exclude(role="annotator").exists():
                return set()
            return set(Project.objects.values_list("pk", flat=True))

        monkeypatch.setattr(api_campaign, "project_ids_seeing_origin", any_role_sees)
        monkeypatch.setattr(
            RegionFilterSet,
            "_within_origin_projects",
            lambda self, queryset, name, value: queryset.filter(**{name: value}),
        )
        monkeypatch.setattr(serializers_campaign, "hide_gold_score", lambda data, context: None)
    if "hidden_names" in BREAKS:
        from annotation.pseudonyms import PersonNamer

        monkeypatch.setattr(PersonNamer, "__call__", lambda self, user_id, username: username)
    if "exclusion_reason" in BREAKS:
        from rest_framework import serializers as drf_serializers

        from annotation.serializers import MembershipSerializer

        monkeypatch.setattr(
            MembershipSerializer,
            "to_representation",
            drf_serializers.ModelSerializer.to_representation,
        )
    if "setting_bounds" in BREAKS:
        # The models' range validators gone: serializers and forms check only the types.
        from annotation.models import LabelClass, Project

        for model in (Project, LabelClass):
            for field in model._meta.concrete_fields:
                monkeypatch.setitem(field.__dict__, "validators", [])
    if "class_cap" in BREAKS:
        import annotation.api_campaign as api_campaign
        import annotation.services.interchange as interchange
        import annotation.setup_pages as setup_pages

        for module in (api_campaign, interchange, setup_pages):
            monkeypatch.setattr(module, "label_classes_reserve", lambda **kwargs: None)
    if "shown_schema" in BREAKS:
        from rest_framework import serializers as drf_serializers

        from annotation.serializers_campaign import DraftSerializer

        monkeypatch.setitem(
            DraftSerializer._declared_fields, "shown", drf_serializers.JSONField(required=False)
        )
    if "archive_checks" in BREAKS:
        import slides.archives as archives

        monkeypatch.setattr(archives, "_safe_member_path", lambda name, target: target / name)
    if "slide_rows" in BREAKS:
        # Registration finds "the same file" in any project again, as before the fix.
        import annotation.services.projects as project_services
        from slides.models import Slide as SlideRow
        from slides.services import slide_register

        monkeypatch.setattr(
            project_services,
            "slide_register",
            lambda **kw: slide_register(**{**kw, "within": SlideRow.objects.all()}),
        )
    if "crop_source_cap" in BREAKS:
        import slides.api as slides_api
        import slides.crops as crops

        monkeypatch.setattr(slides_api, "check_source_size", lambda plan, **kw: None)
        monkeypatch.setattr(crops, "check_source_size", lambda plan, **kw: None)
    if "crop_gate" in BREAKS:
        import slides.api as slides_api
        from slides.readgate import ReadGate

        monkeypatch.setattr(slides_api, "heavy_read_gate", lambda: ReadGate(0))
    yield


def break_bomb_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a test: let Pillow's DecompressionBombWarning be a warning again, everywhere."""
    if "bomb_filter" in BREAKS:
        import warnings

        from PIL import Image

        import annotation.forms

        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        monkeypatch.setattr(annotation.forms, "refuse_decompression_bombs", lambda upload: None)
