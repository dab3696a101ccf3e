"""Annotator pseudonyms: one function names people wherever a project hides names.

The research export, its lineage, the region submissions and history, and the reliability
figures all call :func:`pseudonym` with the project's secret, so a reader who is not a manager
sees the same ``annotator-<hex>`` everywhere and can join nothing back to a username.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from annotation.models import Membership, Project, Role


def pseudonym(secret: bytes, kind: str, key: str, length: int = 12) -> str:
    """A stable pseudonym ``<kind>-<hex>``: HMAC-SHA256 of ``kind:key`` under ``secret``.

    Without the secret the name cannot be traced back to the key (a user id, a slide id, a
    case key), and it never contains the key itself.
    """
    digest = hmac.new(secret, f"{kind}:{key}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}-{digest[:length]}"


def project_secret(project: Project) -> bytes:
    """The key of the project's pseudonyms: stable while the deployment's secret key is."""
    return hashlib.sha256(f"histocrowd-export:{project.pk}:{settings.SECRET_KEY}".encode()).digest()


def annotator_pseudonym(project: Project, user_id: int) -> str:
    """The name the export gives this person in this project."""
    return pseudonym(project_secret(project), "annotator", str(user_id))


def reader_sees_names(reader: object, project: Project) -> bool:
    """Managers always see usernames; everyone else only where the project shows names."""
    if project.show_annotator_names:
        return True
    if not getattr(reader, "is_authenticated", False):
        return False
    return Membership.objects.filter(project=project, user=reader, role=Role.MANAGER).exists()


class PersonNamer:
    """Names people for one reader in one project: the username, or the export's pseudonym.

    A reader always sees their own username: hiding it from its owner protects nobody.
    """

    def __init__(self, reader: object, project: Project) -> None:
        self._reader_id = getattr(reader, "pk", None)
        self._project = project
        self._names = reader_sees_names(reader, project)
        self._secret = b"" if self._names else project_secret(project)

    def __call__(self, user_id: int | None, username: str | None) -> str | None:
        if user_id is None:
            return None
        if self._names or user_id == self._reader_id:
            return username
        return pseudonym(self._secret, "annotator", str(user_id))


def name_person(data: dict, field: str, user_id: int | None, context: dict) -> None:
    """Replace ``data[field]`` (a username) by what the context's ``namer`` shows this reader;
    serializers without a namer in their context answer only the person's own work."""
    namer = context.get("namer")
    if namer is not None:
        data[field] = namer(user_id, data[field])
