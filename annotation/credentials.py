"""API tokens die with the password: a password change revokes the user's tokens.

Every Django path that changes a password (the password-change and reset forms, the admin's
password form, ``createsuperuser``/``changepassword``) calls ``set_password()`` and then
``save()``. ``set_password()`` keeps the new raw password in ``_password`` until the save is done,
so a post-save signal sees the change whichever path made it. Django's own hash upgrade at login
clears ``_password`` before it saves: a rehash is no password change and keeps the tokens.
Sessions need nothing here: Django already ends them when the password hash changes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save
from rest_framework.authtoken.models import Token

logger = logging.getLogger(__name__)


def revoke_tokens_on_password_change(
    sender: type, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created or raw or getattr(instance, "_password", None) is None:
        return
    deleted, _ = Token.objects.filter(user_id=instance.pk).delete()
    if deleted:
        logger.info("password of user %s changed: %s API token(s) revoked", instance.pk, deleted)


def connect() -> None:
    """Called from the app's ready(): the user model is only known once apps are loaded."""
    post_save.connect(
        revoke_tokens_on_password_change,
        sender=get_user_model(),
        dispatch_uid="annotation.credentials.revoke_tokens_on_password_change",
    )
