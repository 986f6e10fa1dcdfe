"""JWT authentication (simplejwt) that binds the user into the log context.

Its records go to the seed's `common.jwt_auth` logger, routed to the security file.
"""

from __future__ import annotations

import logging

from rest_framework.request import Request
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.tokens import Token

from billing.logging_utils import log_security_event
from observability.drf import BindUserMixin

logger = logging.getLogger("common.jwt_auth")


class JWTAuthentication(BindUserMixin, authentication.JWTAuthentication):
    def authenticate(self, request: Request) -> tuple[authentication.AuthUser, Token] | None:
        try:
            # simplejwt's own (BindUserMixin's is typed for any authenticator).
            result: tuple[authentication.AuthUser, Token] | None = super().authenticate(request)
            return result
        except (InvalidToken, AuthenticationFailed) as exc:
            code = getattr(exc, "default_code", "invalid")
            detail = getattr(exc, "detail", None)
            if isinstance(detail, dict):
                code = str(detail.get("code", code))
            logger.warning("JWT authentication failed: %s", code, extra={"reason": code})
            log_security_event(
                request=request,
                event_type="invalid_token",
                severity="warning",
                details={"reason": code},
            )
            raise
