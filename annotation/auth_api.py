"""API tokens: obtain (guarded like every login: annotation/login_guard.py) and revoke."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from config.parsers import SafeJSONParser


class TokenView(ObtainAuthToken):
    """POST username + password for a token; DELETE revokes the caller's token."""

    # ObtainAuthToken names its own parsers; use the API's JSON parser (deep nesting: 400).
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]
    # No DRF throttle: its client address trusts X-Forwarded-For and its counts are per process.
    # The authentication backend counts failures for this path and the login pages alike.
    throttle_classes: list[type] = []
    permission_classes = [AllowAny]

    def get_permissions(self):  # noqa: ANN201 - DRF's signature
        if self.request.method == "DELETE":
            from rest_framework.permissions import IsAuthenticated

            return [IsAuthenticated()]
        return super().get_permissions()

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
