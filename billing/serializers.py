"""Input and output shapes of the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from billing.currencies import ISO_4217
from billing.gateway import PAYMENT_METHODS
from billing.models import Payment, Plan, Refund, Subscription

MAX_AMOUNT = Decimal("999999.99")


def money_field(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=MAX_AMOUNT,
        **kwargs,
    )


class CurrencyField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, **kwargs)

    def to_internal_value(self, data: str) -> str:
        value = super().to_internal_value(data).upper()
        if value not in ISO_4217:
            msg = f"{value!r} is not a known ISO-4217 currency code."
            raise serializers.ValidationError(msg)
        return value


class PlanSerializer(serializers.ModelSerializer[Plan]):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=MAX_AMOUNT
    )
    currency = CurrencyField()

    class Meta:
        model = Plan
        fields = ["id", "name", "code", "amount", "currency", "interval", "active", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {
            "code": {"validators": []}
        }  # uniqueness is the service's 409


class SubscriptionInputSerializer(serializers.Serializer[dict[str, Any]]):
    plan = serializers.SlugRelatedField[Plan](slug_field="code", queryset=Plan.objects.all())


class SubscriptionSerializer(serializers.ModelSerializer[Subscription]):
    plan = serializers.SlugRelatedField[Plan](slug_field="code", read_only=True)

    class Meta:
        model = Subscription
        fields = ["id", "plan", "status", "created_at", "cancelled_at"]


class PaymentInputSerializer(serializers.Serializer[dict[str, Any]]):
    amount = money_field()
    currency = CurrencyField()
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    payment_method = serializers.ChoiceField(choices=PAYMENT_METHODS)


class PaymentSerializer(serializers.ModelSerializer[Payment]):
    class Meta:
        model = Payment
        fields = [
            "id",
            "amount",
            "currency",
            "description",
            "payment_method",
            "status",
            "failure_code",
            "amount_refunded",
            "created_at",
        ]


class RefundInputSerializer(serializers.Serializer[dict[str, Any]]):
    amount = money_field(required=False)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)


class RefundSerializer(serializers.ModelSerializer[Refund]):
    payment = serializers.PrimaryKeyRelatedField[Payment](read_only=True)

    class Meta:
        model = Refund
        fields = ["id", "payment", "amount", "reason", "created_at"]
