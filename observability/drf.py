"""DRF integration: bind the authenticated user into the log context at authentication.

DRF authenticates inside the view, after every middleware has run, so the middleware
cannot know the user on the way in. Mix BindUserMixin into each authentication class:

    from rest_framework_simplejwt import authentication

    class JWTAuthentication(BindUserMixin, authentication.JWTAuthentication):
        pass

Every record after authentication (events, the completed line) then carries user_id and
username. It reads attributes of the user the authenticator returned; it never queries.
"""

from __future__ import annotations

from typing import Any

from observability.tracing.request import bind_user


class BindUserMixin:
    def authenticate(self, request: Any) -> Any:
        result = super().authenticate(request)  # type: ignore[misc]
        if result is not None:
            bind_user(result[0])
        return result
