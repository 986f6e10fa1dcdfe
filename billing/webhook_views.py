"""Staff API for webhook endpoints: list, create, read, change, delete; deliveries per endpoint.

The signing secret is shown once, in the answer to the POST that made the endpoint.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import WEBHOOK_EVENT_TYPES, WebhookDelivery, WebhookEndpoint
from billing.permissions import IsStaff
from billing.webhooks.addresses import UnsafeURL, check_url


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES), required=False
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("id", "url", "active", "event_types", "description", "created_at")
        read_only_fields = ("id", "created_at")

    def validate_url(self, value: str) -> str:
        try:
            check_url(value)
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    event_id = serializers.CharField(source="outbox.event.event_id")
    event_type = serializers.CharField(source="outbox.event.type")

    class Meta:
        model = WebhookDelivery
        fields = (
            "event_id",
            "event_type",
            "attempt",
            "status_code",
            "duration",
            "error",
            "request_id",
            "task_id",
            "created_at",
        )


class WebhookEndpointListCreateView(generics.ListCreateAPIView[WebhookEndpoint]):
    permission_classes = (IsStaff,)
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        body = {**serializer.data, "secret": endpoint.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(generics.RetrieveUpdateDestroyAPIView[WebhookEndpoint]):
    permission_classes = (IsStaff,)
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.all()


class WebhookDeliveryListView(generics.ListAPIView[WebhookDelivery]):
    permission_classes = (IsStaff,)
    serializer_class = WebhookDeliverySerializer

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return (
            WebhookDelivery.objects.filter(outbox__endpoint_id=self.kwargs["pk"])
            .select_related("outbox__event")
            .order_by("-created_at", "-id")
        )
