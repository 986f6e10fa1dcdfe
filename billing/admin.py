"""Read-only admin pages for the billing records, so staff (and the trace viewer) can link to them,
and the admin's login page, throttled and audited (it guards the trace viewer).

Money moves through the services only: the admin shows, it never edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from billing.logging_utils import log_security_event
from billing.models import Payment, Plan, Refund, Subscription
from billing.throttling import (
    Refusal,
    ThrottleUnavailable,
    claim_all,
    forget_username,
    login_throttles,
)
from observability import bind_user


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "amount", "currency", "interval", "active")
    list_filter = ("active", "interval", "currency")
    search_fields = ("code", "name")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "plan", "status", "created_at", "cancelled_at")
    list_filter = ("status", "plan")
    search_fields = ("user__username",)
    list_select_related = ("user", "plan")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "amount", "currency", "status", "failure_code", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("user__username", "gateway_reference", "description")
    list_select_related = ("user",)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment", "amount", "reason", "created_at")
    search_fields = ("payment__user__username", "reason")
    list_select_related = ("payment",)


# --- The admin's login page (it guards the trace viewer at /ops/requests/) ----------------


@dataclass
class AdminLogin:
    """What the login form decided for this request, for the view's status and event."""

    reason: str  # succeeded, throttled, invalid_credentials, not_staff, incomplete
    refusal: Refusal | None = None


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, counting each password check in the login throttles.

    A refused attempt fails validation before authenticate() runs: no password is hashed.
    """

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            self.request.admin_login = AdminLogin("incomplete")  # no password is checked
            return super().clean()
        throttles = login_throttles(username)
        refusal = claim_all(throttles, self.request)
        if refusal is not None:
            self.request.admin_login = AdminLogin("throttled", refusal)
            raise ValidationError(refusal.message, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            # authenticate() found no such user and password, or the user is no staff member.
            reason = "invalid_credentials" if self.user_cache is None else "not_staff"
            self.request.admin_login = AdminLogin(reason)
            raise
        forget_username(throttles)
        self.request.admin_login = AdminLogin("succeeded")
        return cleaned


admin.site.login_form = ThrottledAdminAuthenticationForm


def admin_login(request: HttpRequest) -> HttpResponse:
    """/admin/login/: the admin site's own login, throttled and audited.

    Every POST Django's CSRF check let through is a security event: admin_login_succeeded
    (with the staff member's user_id), admin_login_failed (with a reason), or
    admin_login_throttled, which is also a 429 with Retry-After and the form saying when
    to come back. The username is the one the client sent, masked by the logging layer;
    the password is never logged.
    """
    try:
        response = admin.site.login(request)
    except ThrottleUnavailable as exc:
        return HttpResponse(str(exc.detail), status=503, headers={"Retry-After": "1"})
    outcome: AdminLogin | None = getattr(request, "admin_login", None)
    if outcome is None:
        return response  # the page itself (GET), nothing tried
    details: dict[str, Any] = {"username": request.POST.get("username", "")}
    if outcome.refusal is not None:
        response.status_code = 429
        response["Retry-After"] = str(outcome.refusal.wait)
        details.update(scope=outcome.refusal.scope, retry_after=outcome.refusal.wait)
        event, severity = "admin_login_throttled", "warning"
    elif outcome.reason == "succeeded":
        bind_user(request.user)  # user_id= on the event and on the completed line
        event, severity = "admin_login_succeeded", "info"
    else:
        details["reason"] = outcome.reason
        event, severity = "admin_login_failed", "warning"
    log_security_event(request=request, event_type=event, severity=severity, details=details)
    return response
