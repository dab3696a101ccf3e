"""Who may do what, as data: role x relation x method x URL, expanded into requests.

Each row names a URL pattern, a method and the expected status for every relation a caller can
have to the object. A meta-test fails when a URL pattern of the project has no row, so a new
endpoint cannot ship without its access rule. Refused writes must leave every row unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from annotation.models import Assignment, LabelClass, Region
from annotation.services.assignments import assignment_next
from tests.annotation.adjudication_helpers import ADJUDICATION_NAMES
from tests.annotation.adjudication_helpers import matrix_url as adjudication_url
from tests.annotation.dashboard_helpers import matrix_url as dashboard_url
from tests.factories import add_member, ingested_slide, make_project, make_user
from tests.learning.api_helpers import LEARNING_API_NAMES, LEARNING_API_ROWS
from tests.learning.api_helpers import matrix_url as learning_api_url
from tests.learning.export_helpers import EXPORT_NAMES, EXPORT_ROWS
from tests.learning.export_helpers import matrix_url as export_url
from tests.learning.page_helpers import LEARNING_ROWS
from tests.learning.page_helpers import matrix_url as learning_url

RELATIONS = ["anonymous", "outsider", "annotator", "assignee", "expert", "researcher", "manager"]
MEMBERS = RELATIONS[2:]


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    expect: dict[str, int]  # relation -> status; relations not named get `other`
    other: int = 404
    body: dict | None = None


def everyone(code: int, anonymous: int = 401, outsider: int | None = None) -> dict[str, int]:
    found = {r: code for r in MEMBERS}
    found["anonymous"] = anonymous
    found["outsider"] = code if outsider is None else outsider
    return found


def only(relations: dict[str, int], anonymous: int = 401) -> dict[str, int]:
    return {"anonymous": anonymous, **relations}


MEMBER_READ = everyone(200, outsider=404)
ASSIGNED_READ = only({"assignee": 200, "expert": 200, "researcher": 200, "manager": 200})

ROWS = [
    Row("api-root", "get", everyone(200)),
    Row("schema", "get", everyone(200, anonymous=401)),
    Row("api-docs", "get", everyone(200)),
    Row("api-redoc", "get", everyone(200)),
    Row("api-token", "post", {r: 400 for r in RELATIONS}, body={}),
    Row("slide-list", "get", everyone(200)),
    Row("slide-detail", "get", MEMBER_READ),
    Row("slide-thumbnail", "get", MEMBER_READ),
    Row("slide-tissue-mask", "get", MEMBER_READ),
    Row("slide-crop", "get", MEMBER_READ),
    Row("slide-associated", "get", only({"manager": 200})),
    Row("slide-access-log", "get", only({"manager": 200})),
    Row("slide-set-mpp", "post", only({"manager": 200}), body={"mpp": 0.5}),
    Row("slide-retry", "post", only({"manager": 400}), body={}),
    Row("project-list", "get", everyone(200)),
    Row("project-detail", "get", MEMBER_READ),
    Row("project-detail", "patch", only({"manager": 200}), body={"guidelines": "Outline glands."}),
    Row("project-register-slide", "post", only({"manager": 400}), body={"path": "/etc/passwd"}),
    Row("project-upload-slide", "post", only({"manager": 415}), body={}),
    Row("project-import-annotations", "post", only({"manager": 415}), body={}),
    Row(
        "project-export-annotations",
        "get",
        only({"expert": 400, "researcher": 400, "manager": 400}),
    ),
    Row("project-next-region", "post", only({"annotator": 200, "assignee": 200}), body={}),
    Row("project-seed-regions", "post", only({"manager": 201}), body={"per_slide": 1}),
    Row("project-invite-csv", "post", only({"manager": 415}), body={}),
    Row("project-member-list", "get", MEMBER_READ),
    Row(
        "project-member-list",
        "post",
        only({"manager": 201}),
        body={"username": "newcomer", "role": "annotator"},
    ),
    Row("project-member-detail", "patch", only({"manager": 200}), body={"role": "researcher"}),
    Row("project-member-detail", "delete", only({"manager": 204})),
    Row("project-member-exclude", "post", only({"manager": 200}), body={"reason": "spam"}),
    Row("project-label-class-list", "get", MEMBER_READ),
    Row(
        "project-label-class-list",
        "post",
        only({"manager": 201}),
        body={"name": "necrosis", "color": "#000000"},
    ),
    Row("project-label-class-detail", "patch", only({"manager": 200}), body={"color": "#00ffff"}),
    Row("project-label-class-detail", "delete", only({"manager": 204})),
    Row("region-list", "get", everyone(200)),
    Row(
        "region-list",
        "post",
        # An outsider's project id is refused like a missing one (400), not with a telling 404.
        only({"manager": 201, "outsider": 400}),
        other=404,
        body={"x": 0, "y": 0, "width": 100, "height": 100, "origin": "manual"},
    ),
    Row("region-detail", "get", ASSIGNED_READ),
    Row("region-submissions", "get", ASSIGNED_READ),
    Row("region-history", "get", ASSIGNED_READ),
    Row("assignment-list", "get", everyone(200)),
    Row("assignment-detail", "get", only({"assignee": 200, "manager": 200})),
    Row("assignment-release", "post", only({"manager": 200}), body={}),
    Row("assignment-reassign", "post", only({"manager": 400}), body={}),
    Row("assignment-work", "get", only({"assignee": 200})),
    Row("assignment-work", "put", only({"assignee": 428}), body={"shapes": []}),
    Row("assignment-submit", "post", only({"assignee": 428}), body={}),
    Row("campaign-setup", "get", only({"manager": 200}, anonymous=302)),
    Row("campaign-setup", "post", only({"manager": 200}, anonymous=302), body={}),
    Row("campaign-add-class", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-invite", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-seed", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-add-image", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-guideline-image", "get", everyone(200, anonymous=302, outsider=404)),
    Row("campaign-exclude", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-release", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("campaign-reassign", "post", only({"manager": 302}, anonymous=302), body={}),
    Row("annotation:workspace", "get", only({"assignee": 200}, anonymous=302)),
    Row("annotation:my_work", "get", only({"annotator": 200, "assignee": 200}, anonymous=302)),
    Row("annotation:next_region", "get", only({"annotator": 302, "assignee": 302}, anonymous=302)),
    Row("region-consensus", "get", only({"expert": 200, "researcher": 200, "manager": 200})),
    Row("project-reliability", "get", MEMBER_READ),
    Row("project-adjudication-queue", "get", only({"expert": 200, "manager": 200})),
    Row("slides:library", "get", everyone(200, anonymous=302)),
    Row("slides:viewer", "get", everyone(200, anonymous=302, outsider=404)),
    Row("slides:dzi", "get", everyone(200, anonymous=404, outsider=404)),
    Row("slides:tile", "get", everyone(200, anonymous=404, outsider=404)),
    Row("region-adjudication", "get", only({"expert": 200, "manager": 200})),
    Row("region-adjudication", "post", only({"expert": 400, "manager": 400}), body={}),
    Row("region-agreement-map", "get", only({"expert": 200, "manager": 200})),
    Row("adjudicate-region", "get", only({"expert": 200, "manager": 200}, anonymous=302)),
    Row("adjudication-queue-page", "get", only({"expert": 200, "manager": 200}, anonymous=302)),
    Row("dashboard:project", "get", everyone(200, anonymous=302, outsider=404)),
    Row("dashboard:feedback", "get", only({"assignee": 200}, anonymous=302)),
    *[Row(name, method, expect, body=body) for name, method, expect, body in EXPORT_ROWS],
    *[Row(name, method, expect) for name, method, expect in LEARNING_ROWS],
    *[Row(name, method, expect) for name, method, expect in LEARNING_API_ROWS],
]

# Public by design, or guarded by Django itself (the admin's staff check).
EXEMPT_PREFIXES = ("admin:", "login", "logout", "password_", "api-root")


def _pattern_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list, namespace: str = "") -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, ns)
            elif isinstance(p, URLPattern) and p.name:
                names.add(namespace + p.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_url_pattern_has_a_row_in_the_matrix():
    covered = {row.name for row in ROWS}
    missing = sorted(
        n
        for n in _pattern_names() - covered
        if not n.startswith(EXEMPT_PREFIXES) and not n.startswith("bench")
    )
    assert not missing, f"URL patterns without an access rule: {missing}"


@pytest.fixture
def world(db, slides_dir, settings):
    settings.TILE_PREBUILD_MAX_TILES = 0  # tiles render on demand; ingest stays fast
    users = {r: make_user(r) for r in RELATIONS if r != "anonymous"}
    make_user("newcomer")  # the manager adds them in the member-list POST row
    project = make_project(users["manager"], target_mpp=1.0, region_size=256)
    for relation in ("annotator", "assignee", "expert", "researcher"):
        role = "annotator" if relation in ("annotator", "assignee") else relation
        add_member(project, users[relation], role)
    other = make_project(users["outsider"])
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    ingested_slide(slides_dir / "hamamatsu-dapi.ndpi", other)
    region = Region.objects.create(
        project=project, slide=slide, x=200, y=200, width=513, height=513, origin="seeded"
    )
    project.redundancy_k = 1
    project.save()
    assignment = assignment_next(project=project, user=users["assignee"])
    # A second region, so the plain annotator's next-region call has something to take.
    Region.objects.create(
        project=project, slide=slide, x=900, y=900, width=513, height=513, origin="seeded"
    )
    label = LabelClass.objects.create(project=project, name="tumour", color="#ff0000")
    member = project.memberships.get(user=users["annotator"])
    kwargs = {
        "pk": slide.pk,
        "slide_id": slide.pk,
        "project_pk": project.pk,
        "image_name": "label",
        "level": 10,
        "col": 0,
        "row": 0,
    }
    per_name = {
        "project": {"pk": project.pk},
        "region": {"pk": region.pk},
        "assignment": {"pk": assignment.pk},
        "project-member": {"project_pk": project.pk, "pk": member.pk},
        "project-label-class": {"project_pk": project.pk, "pk": label.pk},
    }
    from django.core.files.base import ContentFile

    from annotation.models import GuidelineImage

    example = GuidelineImage(project=project, caption="gland")
    example.image.save(
        "gland.png", ContentFile((slides_dir.parent / "images" / "skimage_ihc.png").read_bytes())
    )
    return {
        "users": users,
        "project": project,
        "slide": slide,
        "kwargs": kwargs,
        "guideline_image": example.pk,
        "per_name": per_name,
        "region": region,
    }


def _url(world: dict, name: str) -> str:
    if name in EXPORT_NAMES:
        return export_url(world, name)
    if name.startswith("learning:"):
        return learning_url(world, name)
    if name in LEARNING_API_NAMES:
        return learning_api_url(world, name)
    if name in ADJUDICATION_NAMES:
        return adjudication_url(world, name)
    if name.startswith("dashboard:"):
        return dashboard_url(world, name)
    if name.endswith("-list") or name in (
        "api-root",
        "schema",
        "api-docs",
        "api-redoc",
        "api-token",
        "slides:library",
    ):
        base = name.rsplit("-list", 1)[0] if name.endswith("-list") else None
        kwargs = {"project_pk": world["project"].pk} if base and base.startswith("project-") else {}
        return reverse(name, kwargs=kwargs)
    for prefix, kwargs in world["per_name"].items():
        if (
            name.startswith(prefix + "-")
            and name.split(prefix + "-", 1)[1].count("-") <= 1
            and not any(name.startswith(p + "-") for p in world["per_name"] if len(p) > len(prefix))
        ):
            return reverse(name, kwargs=kwargs)
    if name.startswith("campaign-"):
        kwargs = {"project_id": world["project"].pk}
        if name == "campaign-guideline-image":
            kwargs["image_id"] = world["guideline_image"]
        if name == "campaign-exclude":
            kwargs["membership_id"] = world["per_name"]["project-member"]["pk"]
        if name in ("campaign-release", "campaign-reassign"):
            kwargs["assignment_id"] = world["per_name"]["assignment"]["pk"]
        return reverse(name, kwargs=kwargs)
    if name.startswith("annotation:"):
        if name == "annotation:workspace":
            return reverse(name, kwargs={"assignment_id": world["per_name"]["assignment"]["pk"]})
        return reverse(name, kwargs={"project_id": world["project"].pk})
    if name.startswith("slide-"):
        extra = {"image_name": "label"} if name == "slide-associated" else {}
        query = "?x=0&y=0&width=64&height=64" if name == "slide-crop" else ""
        return reverse(name, kwargs={"pk": world["slide"].pk, **extra}) + query
    if name == "slides:viewer" or name == "slides:dzi":
        return reverse(name, kwargs={"slide_id": world["slide"].pk})
    if name == "slides:tile":
        return reverse(
            name, kwargs={"slide_id": world["slide"].pk, "level": 10, "col": 0, "row": 0}
        )
    raise KeyError(name)


def _snapshot() -> str:
    """Every row of the apps' tables, as text: a refused write must leave it identical."""
    rows = {}
    for label in ("slides", "annotation", "learning"):
        for model in apps.get_app_config(label).get_models():
            rows[model.__name__] = list(model.objects.order_by("pk").values())
    return json.dumps(rows, default=str, sort_keys=True)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method}-{r.name}")
def test_access_matrix(row, world, client):
    url = _url(world, row.name)
    if row.name == "region-list" and row.method == "post":
        row = Row(
            row.name,
            row.method,
            row.expect,
            row.other,
            {**row.body, "project": world["project"].pk, "slide": world["slide"].pk},
        )

    # Refusals first, then the allowed callers (their writes change the world).
    def allowed(relation: str) -> bool:
        code = row.expect.get(relation, row.other)
        # Form posts answer a success with a redirect; an anonymous 302 is the login redirect.
        return 200 <= code < 300 or (code == 302 and relation != "anonymous")

    order = sorted(RELATIONS, key=allowed)
    for relation in order:
        expected = row.expect.get(relation, row.other)
        client.logout()
        if relation != "anonymous":
            client.force_login(world["users"][relation])
        before = _snapshot() if row.method != "get" and not allowed(relation) else None
        call = getattr(client, row.method)
        if row.method == "get":
            response = call(url)
        else:
            response = call(url, json.dumps(row.body or {}), content_type="application/json")
        assert response.status_code == expected, (relation, row.method, url, response.content[:300])
        if before is not None:
            assert _snapshot() == before, (
                relation,
                row.method,
                url,
                "a refused write changed rows",
            )
    assert Assignment.objects.exists()
