"""Read-only admin pages for the billing records, so staff (and the trace viewer) can link to them.

Money moves through the services only: the admin shows, it never edits.
"""

from __future__ import annotations

from django.contrib import admin

from billing.models import Payment, Plan, Refund, SandboxCharge, Subscription


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
    list_display = (
        "id",
        "user",
        "amount",
        "currency",
        "status",
        "failure_code",
        "created_at",
        "attempted_at",
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
    readonly_fields = ("gateway_idempotency_key",)


@admin.register(SandboxCharge)
class SandboxChargeAdmin(ReadOnlyAdmin):
    """The sandbox gateway's side: what the "provider" charged, by the payment's gateway key."""

    list_display = ("reference", "idempotency_key", "amount", "currency", "succeeded", "created_at")
    list_filter = ("succeeded", "currency")
    search_fields = ("reference", "idempotency_key")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "payment", "amount", "reason", "created_at")
    search_fields = ("payment__user__username", "reason")
    list_select_related = ("payment",)
