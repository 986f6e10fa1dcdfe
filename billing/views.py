"""The API's views: validate, call one service or selector, serialize."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from billing import selectors, services
from billing.exceptions import InvalidRequest
from billing.logging_utils import log_security_event
from billing.login_identity import body_username
from billing.models import Payment, Plan, Subscription
from billing.permissions import IsStaff, ReadOrStaffWrite
from billing.serializers import (
    PaymentInputSerializer,
    PaymentSerializer,
    PlanSerializer,
    RefundInputSerializer,
    RefundSerializer,
    SubscriptionInputSerializer,
    SubscriptionSerializer,
)
from billing.throttling import (
    LoginClientThrottle,
    LoginThrottle,
    LoginThrottled,
    LoginUsernameThrottle,
    claim_all,
    forget_username,
)
from observability import bind, bind_user, log_stats

if TYPE_CHECKING:
    from django.contrib.auth.models import User  # AUTH_USER_MODEL, as django-stubs reads it

logger = logging.getLogger("billing.views")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:\-]{1,255}")


def _user(request: Request) -> User:
    """The request's user: authenticated (IsAuthenticated is the API's default permission)."""
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated
    return user


class LoginView(TokenObtainPairView):
    """POST username + password, get an access and a refresh token.

    Throttled per client and per (username, client) before the password is checked
    (billing.throttling); every outcome is a security event: login_succeeded (with the
    user's id), login_failed, login_throttled.
    """

    throttle_classes = (LoginClientThrottle, LoginUsernameThrottle)
    login_throttles: list[LoginThrottle] = []  # this request's, set by check_throttles()

    def check_throttles(self, request: Request) -> None:
        """All the throttles' slots or none (DRF's own would count a refused attempt).

        POST only: another method checks no password (it is a 405).
        """
        throttles = self.get_throttles() if request.method == "POST" else []
        self.login_throttles = [t for t in throttles if isinstance(t, LoginThrottle)]
        if not self.login_throttles:
            return
        refusal = claim_all(self.login_throttles, request, self)
        if refusal is not None:
            log_security_event(
                request=request,
                event_type="login_throttled",
                severity="warning",
                details={
                    "username": _shown(body_username(request)),
                    "scope": refusal.scope,
                    "retry_after": refusal.wait,
                },
            )
            raise LoginThrottled(refusal)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = _shown(body_username(request))
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            log_security_event(
                request=request,
                event_type="login_failed",
                severity="warning",
                details={"username": username},
            )
            raise
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        user = serializer.user if isinstance(serializer, TokenObtainSerializer) else None
        bind_user(user)  # user_id= on the event and on the completed line
        forget_username(self.login_throttles)
        log_security_event(
            request=request,
            event_type="login_succeeded",
            severity="info",
            details={"username": username},
        )
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


def _shown(username: object) -> str | None:
    """The username for an event: whole (the layer masks it, then caps it)."""
    return None if username is None else str(username)


class RefreshView(TokenRefreshView):
    """POST a refresh token, get a new access token."""


class HealthView(APIView):
    """200 when the database answers; no authentication."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            logger.exception("Health check: the database did not answer")
            return Response(
                {"status": "unavailable", "database": "down", "logging": log_stats()}, status=503
            )
        return Response({"status": "ok", "database": "ok", "logging": log_stats()})


class PlanListCreateView(generics.ListCreateAPIView[Plan]):
    permission_classes = (ReadOrStaffWrite,)
    serializer_class = PlanSerializer

    def get_queryset(self) -> QuerySet[Plan]:
        return selectors.plan_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PlanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = services.plan_create(**serializer.validated_data)
        return Response(PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


class SubscriptionListCreateView(generics.ListCreateAPIView[Subscription]):
    serializer_class = SubscriptionSerializer

    def get_queryset(self) -> QuerySet[Subscription]:
        return selectors.subscription_list(user=_user(self.request))

    @extend_schema(request=SubscriptionInputSerializer, responses=SubscriptionSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = services.subscription_create(
            user=_user(request), plan=serializer.validated_data["plan"]
        )
        bind(subscription_id=subscription.id)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionCancelView(APIView):
    @extend_schema(request=None, responses=SubscriptionSerializer)
    def post(self, request: Request, pk: int) -> Response:
        subscription = get_object_or_404(selectors.subscription_list(user=_user(request)), pk=pk)
        bind(subscription_id=subscription.id)
        subscription = services.subscription_cancel(subscription=subscription)
        return Response(SubscriptionSerializer(subscription).data)


class PaymentListCreateView(generics.ListCreateAPIView[Payment]):
    serializer_class = PaymentSerializer

    def get_queryset(self) -> QuerySet[Payment]:
        return selectors.payment_list(user=_user(self.request))

    @extend_schema(
        request=PaymentInputSerializer,
        responses={201: PaymentSerializer, 200: PaymentSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            msg = "Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 . _ : -"
            raise InvalidRequest(msg, field="Idempotency-Key")
        serializer = PaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        logger.debug("Processing payment request for user %s", request.user.id)
        payment, created = services.payment_create(
            user=_user(request), idempotency_key=key, **serializer.validated_data
        )
        bind(payment_id=payment.id)
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(
            PaymentSerializer(payment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=headers,
        )


class PaymentDetailView(generics.RetrieveAPIView[Payment]):
    serializer_class = PaymentSerializer

    def get_queryset(self) -> QuerySet[Payment]:
        return selectors.payment_list(user=_user(self.request))


class PaymentRefundView(APIView):
    @extend_schema(request=RefundInputSerializer, responses={201: RefundSerializer})
    def post(self, request: Request, pk: int) -> Response:
        payment = get_object_or_404(selectors.payment_list(user=_user(request)), pk=pk)
        bind(payment_id=payment.id)
        serializer = RefundInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = services.refund_create(
            payment=payment,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class ReportView(APIView):
    def get(self, request: Request, report_type: str) -> Response:
        return Response(selectors.report_generate(user=_user(request), report_type=report_type))


class AdminStatsView(APIView):
    permission_classes = (IsStaff,)

    def get(self, request: Request) -> Response:
        return Response(selectors.admin_stats())
