"""Permissions that leave a security event behind when they refuse."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from billing.logging_utils import log_security_event


class IsStaff(BasePermission):
    """Staff only; a refused user is logged as `unauthorized_admin_access`."""

    message = "Staff access is required."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.is_staff:
            return True
        log_security_event(
            request=request,
            event_type="unauthorized_admin_access",
            severity="warning",
            details={"user_id": user.id, "attempted_endpoint": request.path},
        )
        return False


class ReadOrStaffWrite(IsStaff):
    """Any authenticated user reads; only staff writes."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)
