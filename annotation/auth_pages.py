"""The password-reset page, rate-limited: reset e-mails per address entered and per client.

Logins need no view of their own: every login path is guarded in ``authenticate()``
(annotation/login_guard.py).
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpResponse

from annotation.login_guard import refusal_response, reset_email_wait


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset page; past ``PASSWORD_RESET_MAX`` e-mails it answers 429 and sends none.

    The limit counts the address as typed, whether or not an account has it, so a 429 tells
    nothing about which addresses exist.
    """

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        wait = reset_email_wait(self.request, form.cleaned_data["email"])
        if wait is not None:
            return refusal_response(self.request, wait, "password-reset requests")
        return super().form_valid(form)
