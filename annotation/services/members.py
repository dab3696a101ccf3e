"""Inviting members in bulk, and excluding an annotator from a project."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Membership,
    Project,
    Role,
    Submission,
)
from annotation.services.merge import merge_enqueue_for_annotator
from annotation.services.projects import membership_set
from annotation.services.submissions import submission_set_counts

MAX_CSV_ROWS = 2000


@dataclass
class InviteReport:
    created: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def members_invite_csv(*, project: Project, text: str, request: HttpRequest | None) -> InviteReport:
    """Rows ``username,email,role``; new users get a password-reset e-mail to set a password.

    All rows are checked first; if any is wrong nothing is written and every error is listed.
    """
    report = InviteReport()
    rows = list(csv.reader(io.StringIO(text)))
    if rows and [c.strip().lower() for c in rows[0]][:3] == ["username", "email", "role"]:
        rows = rows[1:]
    if len(rows) > MAX_CSV_ROWS:
        report.errors.append(f"at most {MAX_CSV_ROWS} rows per file")
        return report
    parsed = []
    for number, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 3:
            report.errors.append(f"row {number}: expected username,email,role")
            continue
        username, email, role = (c.strip() for c in row[:3])
        try:
            validate_email(email)
        except Exception:
            report.errors.append(f"row {number}: {email!r} is not an e-mail address")
            continue
        if role not in Role.values:
            report.errors.append(f"row {number}: role must be one of {', '.join(Role.values)}")
            continue
        if not username or len(username) > 150:
            report.errors.append(f"row {number}: username missing or too long")
            continue
        parsed.append((username, email, role))
    if report.errors:
        return report
    User = get_user_model()
    with transaction.atomic():
        for username, email, role in parsed:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username=username, email=email)
                user.set_unusable_password()
                user.save(update_fields=["password"])
                report.created.append(username)
            else:
                report.added.append(username)
            membership_set(project=project, user=user, role=role)
    if request is not None:
        # New users have no password yet: Django's reset flow sends them a link to set one.
        for username, email, _role in parsed:
            if username in report.created:
                PasswordResetForm().send_mail(
                    "registration/password_reset_subject.txt",
                    "registration/password_reset_email.html",
                    _reset_context(User.objects.get(username=username), request),
                    None,
                    email,
                )
    return report


def _reset_context(user: object, request: HttpRequest) -> dict[str, object]:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    return {
        "email": user.email,
        "domain": request.get_host(),
        "site_name": "histocrowd",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if request.is_secure() else "http",
    }


@transaction.atomic
def member_exclude(*, membership: Membership, by: object, reason: str) -> int:
    """Exclude an annotator: no more work, active slots released, their labels stop counting.

    Returns how many submissions stopped counting; the consensus issue re-merges their regions.
    """
    if not reason.strip():
        raise ValueError("give a reason for the exclusion")
    Membership.objects.filter(pk=membership.pk).update(excluded=True, excluded_reason=reason)
    Assignment.objects.filter(
        region__project=membership.project,
        annotator=membership.user,
        status=AssignmentStatus.ACTIVE,
    ).update(status=AssignmentStatus.RELEASED)
    changed = 0
    for submission in Submission.objects.filter(
        region__project=membership.project, annotator=membership.user, counts=True
    ):
        submission_set_counts(submission=submission, counts=False, user=by, reason=reason)
        changed += 1
    if changed:
        # Their labels no longer count: re-merge the regions they worked on (on commit).
        merge_enqueue_for_annotator(project=membership.project, annotator=membership.user)
    return changed
