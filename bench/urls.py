import logging

from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger("bench.views")


class Ping(APIView):
    authentication_classes = ()
    permission_classes = ()

    def get(self, request):
        return Response({"ok": True})


class OrderSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField(max_length=3)
    description = serializers.CharField(max_length=200, required=False)


class Orders(APIView):
    """A POST that validates a serializer and logs one line (PERF-NOTES's second endpoint)."""

    authentication_classes = ()
    permission_classes = ()

    def post(self, request):
        serializer = OrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        logger.info("Order accepted for %s", serializer.validated_data["currency"])
        return Response({"ok": True, **serializer.data}, status=201)


urlpatterns = [path("api/v1/ping/", Ping.as_view()), path("api/v1/orders/", Orders.as_view())]
