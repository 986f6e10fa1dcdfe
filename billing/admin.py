"""Read-only admin pages for the billing records, so staff (and the trace viewer) can link to them,
and the admin's login page, throttled and audited (it guards the trace viewer).

Money moves through the services only: the admin shows, it never edits.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from billing.logging_utils import log_security_event
from billing.models import (
    WEBHOOK_EVENT_TYPES,
    Payment,
    Plan,
    Refund,
    SandboxCharge,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from billing.throttling import (
    ThrottleUnavailable,
    claim_all,
    forget_username,
    login_throttles,
)
from billing.webhooks.addresses import UnsafeURL, check_url
from observability import bind_user, get_redactor

_M = TypeVar("_M", bound=Model)
# The admin's home page points to the trace viewer and to /metrics.
admin.site.index_template = "observability/admin/index.html"


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    @admin.display(description="request")
    def request_story(self, obj: _M) -> str:
        """The record's request ID, linked to its story in the trace viewer."""
        request_id = getattr(obj, "request_id", None) or ""
        if not request_id:
            return "-"
        try:
            url = reverse("observability_viewer:request", args=[request_id])
        except NoReverseMatch:  # not an ID the viewer takes: shown, not linked
            return str(request_id)
        return format_html('<a href="{}" class="request-story">{}</a>', url, request_id)


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin[Plan]):
    list_display = ("code", "name", "amount", "currency", "interval", "active")
    list_filter = ("active", "interval", "currency")
    search_fields = ("code", "name")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin[Subscription]):
    list_display = ("id", "user", "plan", "status", "created_at", "cancelled_at")
    list_filter = ("status", "plan")
    search_fields = ("user__username",)
    list_select_related = ("user", "plan")
    readonly_fields = ("request_story",)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin[Payment]):
    list_display = (
        "id",
        "user",
        "amount",
        "currency",
        "status",
        "failure_code",
        "created_at",
        "attempted_at",
        "request_story",
    )
    list_filter = ("status", "currency")
    search_fields = (
        "user__username",
        "gateway_reference",
        "gateway_idempotency_key",
        "idempotency_key",
        "description",
    )
    list_select_related = ("user",)
    # editable=False fields are hidden from the form unless listed here.
    readonly_fields = ("gateway_idempotency_key", "request_story")


@admin.register(SandboxCharge)
class SandboxChargeAdmin(ReadOnlyAdmin[SandboxCharge]):
    """The sandbox gateway's side: what the "provider" charged, by the payment's gateway key."""

    list_display = ("reference", "idempotency_key", "amount", "currency", "succeeded", "created_at")
    list_filter = ("succeeded", "currency")
    search_fields = ("reference", "idempotency_key")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin[Refund]):
    list_display = ("id", "payment", "amount", "reason", "created_at")
    search_fields = ("payment__user__username", "reason")
    list_select_related = ("payment",)
    readonly_fields = ("request_story",)


# --- The admin's login page (it guards the trace viewer at /ops/requests/) ----------------


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin site's login form: each password check throttled, each outcome audited.

    It is the site's `login_form`, so every route to the admin's login is guarded. A
    refused attempt fails validation before authenticate() runs: no password is hashed.
    Every outcome is a security event: admin_login_succeeded (with the staff member's
    user_id), admin_login_failed (reason=invalid_credentials, not_staff or incomplete),
    admin_login_throttled. The username is the one the client sent, masked whole by the
    logging layer; the password is never logged. A refusal's status and Retry-After are
    `login_status`, for admin_login().
    """

    login_status: tuple[int, int] | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            self._audit("admin_login_failed", reason="incomplete")
            return super().clean()  # which checks no password either
        if self.request is None:
            msg = "The admin's login form needs its request (the admin site passes it)."
            raise ImproperlyConfigured(msg)
        throttles = login_throttles(username)
        try:
            refusal = claim_all(throttles, self.request)
        except ThrottleUnavailable as exc:
            self.login_status = (503, 1)
            raise ValidationError(str(exc.detail), code="throttle_unavailable") from exc
        if refusal is not None:
            self.login_status = (429, refusal.wait)
            self._audit("admin_login_throttled", scope=refusal.scope, retry_after=refusal.wait)
            raise ValidationError(refusal.message, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            # authenticate() found no such user and password, or the user is no staff member.
            reason = "invalid_credentials" if self.user_cache is None else "not_staff"
            self._audit("admin_login_failed", reason=reason)
            raise
        forget_username(throttles)
        bind_user(self.user_cache)  # user_id= on the event and on the completed line
        self._audit("admin_login_succeeded", severity="info")
        return cleaned

    def _audit(self, event_type: str, severity: str = "warning", **details: Any) -> None:
        username = self.data.get("username", "")
        log_security_event(
            request=self.request,
            event_type=event_type,
            severity=severity,
            details={"username": username, **details},
        )


admin.site.login_form = ThrottledAdminAuthenticationForm


def admin_login(request: HttpRequest) -> HttpResponse:
    """/admin/login/: the admin site's own login page, with the status its form decided.

    A `next` that holds what the masker would change (a card number) is dropped: the page
    and its redirect would repeat it. A refused attempt is a 429 with Retry-After (the
    form says when to come back); a login throttle store that does not answer (Redis
    down) is a 503 with Retry-After.
    """
    redactor = get_redactor()
    query = request.META.get("QUERY_STRING", "")
    if query and redactor.query_string(query) != query:  # the form's action repeats it
        if request.method != "POST":
            return HttpResponseRedirect(request.path)
        request.META["QUERY_STRING"] = ""
        request.GET = QueryDict()  # an empty one
    target = request.POST.get(REDIRECT_FIELD_NAME)
    if target is not None and redactor.text(target) != target:
        post = request.POST.copy()
        del post[REDIRECT_FIELD_NAME]
        request.POST = post  # type: ignore[assignment]  # a mutable copy, by design
    response = admin.site.login(request)
    context = response.context_data if isinstance(response, TemplateResponse) else None
    form = (context or {}).get("form")
    status = form.login_status if isinstance(form, ThrottledAdminAuthenticationForm) else None
    if status is not None:
        response.status_code = status[0]
        response["Retry-After"] = str(status[1])
    return response


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "active", "event_types", "description", "secret", "previous_secret")

    def clean_event_types(self) -> list[str]:
        types: Any = self.cleaned_data["event_types"]
        if not isinstance(types, list) or not all(t in WEBHOOK_EVENT_TYPES for t in types):
            msg = f"must be a list of event types from {', '.join(WEBHOOK_EVENT_TYPES)}"
            raise ValidationError(msg)
        return types

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        try:
            check_url(url)
        except UnsafeURL as exc:
            raise ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    """Endpoints are configuration, not money: staff add, change and remove them here."""

    form = WebhookEndpointForm
    list_display = ("id", "url", "active", "event_types", "created_at")
    list_filter = ("active",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin[WebhookEvent]):
    list_display = ("event_id", "type", "request_id", "created_at")
    list_filter = ("type",)
    search_fields = ("event_id", "request_id")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = ("outbox", "attempt", "status_code", "duration", "error", "request_id")
    search_fields = ("request_id", "task_id", "outbox__event__event_id")
