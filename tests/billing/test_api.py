"""Every endpoint's contract: status, body, permissions, users see only their own."""

from __future__ import annotations

import json

import pytest

from billing.models import Payment, Subscription

pytestmark = pytest.mark.django_db

PAY = {"amount": "99.99", "currency": "USD", "description": "Pro", "payment_method": "pm_card_visa"}


def pay(client, **overrides):
    return client.post("/api/v1/payments/", {**PAY, **overrides}, format="json")


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] and error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    if field is not None:
        assert field in error["fields"], error


class TestAuth:
    def test_login_returns_access_and_refresh(self, anon, user):
        response = anon.post(
            "/api/v1/auth/token/",
            {"username": "john_doe", "password": "s3cret-pass-123"},
            format="json",
        )
        assert response.status_code == 200
        assert set(response.json()) == {"access", "refresh"}

    def test_token_works_and_refresh_gives_new_access(self, anon, user):
        tokens = anon.post(
            "/api/v1/auth/token/",
            {"username": "john_doe", "password": "s3cret-pass-123"},
            format="json",
        ).json()
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert anon.get("/api/v1/payments/").status_code == 200
        refreshed = anon.post(
            "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
        )
        assert refreshed.status_code == 200
        assert "access" in refreshed.json()

    def test_wrong_password_is_401(self, anon, user):
        response = anon.post(
            "/api/v1/auth/token/", {"username": "john_doe", "password": "nope"}, format="json"
        )
        assert_error(response, 401)

    def test_login_missing_field_names_it(self, anon, user):
        assert_error(anon.post("/api/v1/auth/token/", {}, format="json"), 400, "username")

    @pytest.mark.parametrize(
        "header", [None, "Bearer not-a-jwt", "Bearer a.b.c", "Basic Zm9vOmJhcg=="]
    )
    def test_missing_or_bad_token_is_401(self, anon, header):
        if header:
            anon.credentials(HTTP_AUTHORIZATION=header)
        assert_error(anon.get("/api/v1/payments/"), 401)


class TestHealthSchemaDocs:
    def test_health_needs_no_auth(self, anon):
        response = anon.get("/health/")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    def test_schema_is_openapi3(self, anon):
        response = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200
        schema = json.loads(response.content)
        assert schema["openapi"].startswith("3.")
        assert "/api/v1/payments/" in schema["paths"]

    def test_docs_page_uses_local_assets(self, anon):
        response = anon.get("/api/docs/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "swagger-ui" in html
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


class TestPlans:
    def test_list_shows_active_plans_only(self, api, plan, staff, client_for):
        client_for(staff).post(
            "/api/v1/plans/",
            {
                "name": "Old",
                "code": "old",
                "amount": "1.00",
                "currency": "USD",
                "interval": "month",
                "active": False,
            },
            format="json",
        )
        codes = [p["code"] for p in api.get("/api/v1/plans/").json()["results"]]
        assert codes == ["pro-monthly"]

    def test_staff_creates_plan(self, client_for, staff):
        response = client_for(staff).post(
            "/api/v1/plans/",
            {
                "name": "Team",
                "code": "team",
                "amount": "49.00",
                "currency": "eur",
                "interval": "year",
            },
            format="json",
        )
        assert response.status_code == 201
        assert response.json()["currency"] == "EUR"

    def test_user_cannot_create_plan(self, api):
        response = api.post(
            "/api/v1/plans/",
            {"name": "X", "code": "x", "amount": "1.00", "currency": "USD", "interval": "month"},
            format="json",
        )
        assert_error(response, 403)

    def test_duplicate_code_is_409(self, client_for, staff, plan):
        response = client_for(staff).post(
            "/api/v1/plans/",
            {
                "name": "Dup",
                "code": plan.code,
                "amount": "1.00",
                "currency": "USD",
                "interval": "month",
            },
            format="json",
        )
        assert_error(response, 409, "code")

    def test_bad_interval_named(self, client_for, staff):
        response = client_for(staff).post(
            "/api/v1/plans/",
            {"name": "X", "code": "x", "amount": "1.00", "currency": "USD", "interval": "week"},
            format="json",
        )
        assert_error(response, 400, "interval")


class TestSubscriptions:
    def test_subscribe_list_cancel(self, api, plan):
        created = api.post("/api/v1/subscriptions/", {"plan": plan.code}, format="json")
        assert created.status_code == 201
        sub_id = created.json()["id"]
        assert [s["id"] for s in api.get("/api/v1/subscriptions/").json()["results"]] == [sub_id]
        cancelled = api.post(f"/api/v1/subscriptions/{sub_id}/cancel/")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert_error(api.post(f"/api/v1/subscriptions/{sub_id}/cancel/"), 409)

    def test_one_active_subscription_per_plan(self, api, plan):
        assert (
            api.post("/api/v1/subscriptions/", {"plan": plan.code}, format="json").status_code
            == 201
        )
        second = api.post("/api/v1/subscriptions/", {"plan": plan.code}, format="json")
        assert_error(second, 409, "plan")
        assert Subscription.objects.filter(status="active").count() == 1

    def test_unknown_plan_named(self, api, plan):
        assert_error(
            api.post("/api/v1/subscriptions/", {"plan": "nope"}, format="json"), 400, "plan"
        )

    def test_others_subscription_is_404(self, api, client_for, other_user, plan):
        theirs = client_for(other_user).post(
            "/api/v1/subscriptions/", {"plan": plan.code}, format="json"
        )
        assert_error(api.post(f"/api/v1/subscriptions/{theirs.json()['id']}/cancel/"), 404)
        assert api.get("/api/v1/subscriptions/").json()["results"] == []


class TestPayments:
    def test_create_succeeds(self, api):
        response = pay(api)
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == "succeeded"
        assert body["amount"] == "99.99"
        assert Payment.objects.get(pk=body["id"]).status == "succeeded"

    def test_declined_is_402_and_stored_failed(self, api):
        response = pay(api, payment_method="pm_card_declined")
        assert_error(response, 402)
        payment = response.json()["error"]["payment"]
        assert payment["status"] == "failed"
        assert payment["failure_code"] == "card_declined"
        assert Payment.objects.get(pk=payment["id"]).status == "failed"

    def test_idempotency_key_replays_original(self, api):
        first = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
        again = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
        assert first.status_code == 201
        assert again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert Payment.objects.count() == 1

    def test_idempotency_key_still_in_flight_is_409_with_retry_after(self, api, user):
        Payment.objects.create(  # its request is still at the gateway
            user=user,
            amount="99.99",
            currency="USD",
            description="Pro",  # the same body as PAY: a different one is a conflict
            payment_method="pm_card_visa",
            idempotency_key="order-43",
        )
        response = api.post(
            "/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="order-43"
        )
        assert_error(response, 409, "Idempotency-Key")
        assert response.json()["error"]["code"] == "idempotency_key_in_use"
        assert response["Retry-After"] == "1"
        assert Payment.objects.count() == 1

    def test_idempotency_key_replays_a_decline_as_the_same_402(self, api):
        declined = {**PAY, "payment_method": "pm_card_declined"}
        first = api.post("/api/v1/payments/", declined, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
        again = api.post("/api/v1/payments/", declined, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
        assert_error(first, 402)
        assert_error(again, 402)
        assert again["Idempotent-Replayed"] == "true"
        assert again.json()["error"]["payment"] == first.json()["error"]["payment"]
        assert Payment.objects.count() == 1

    def test_idempotency_key_with_other_body_is_409(self, api):
        api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        other = api.post(
            "/api/v1/payments/", {**PAY, "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert_error(other, 409, "Idempotency-Key")

    def test_invariant_9_idempotency_key_with_other_description_is_409_naming_the_key(self, api):
        first = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="k-d")
        other = api.post(
            "/api/v1/payments/",
            {**PAY, "description": "Enterprise seat 4111-77"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-d",
        )
        assert first.status_code == 201
        assert_error(other, 409, "Idempotency-Key")
        error = other.json()["error"]
        assert error["code"] == "conflict"
        assert "description" in error["message"]
        assert "4111" not in other.content.decode()  # the field is named, the value never echoed
        assert "payment" not in error  # nothing of the original payment is replayed
        assert Payment.objects.get().description == "Pro"

    def test_idempotency_key_replays_the_same_body_written_differently(self, api):
        first = api.post(
            "/api/v1/payments/", {**PAY, "amount": "10"}, format="json", HTTP_IDEMPOTENCY_KEY="k-s"
        )
        again = api.post(
            "/api/v1/payments/",
            {**PAY, "amount": "10.00", "currency": "usd"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-s",
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]

    def test_invariant_8_gateway_timeout_is_503_with_the_pending_payment_then_reconciled(
        self, api, monkeypatch, settings
    ):
        from datetime import timedelta

        from django.utils import timezone
        from freezegun import freeze_time

        from billing import gateway

        settings.BILLING_GATEWAY_TIMEOUT = 0.05
        settings.BILLING_PENDING_LEASE = 60
        monkeypatch.setattr(gateway, "DELAY", 1.0)
        first = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="k-t")
        assert_error(first, 503)
        assert first.json()["error"]["code"] == "gateway_unavailable"
        assert first["Retry-After"] == "60"
        assert first.json()["error"]["payment"]["status"] == "pending"
        monkeypatch.setattr(gateway, "DELAY", 0.0)
        busy = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="k-t")
        assert_error(busy, 409, "Idempotency-Key")
        with freeze_time(timezone.now() + timedelta(seconds=61), tick=True):
            again = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="k-t")
        assert again.status_code == 200, again.content
        assert again["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["error"]["payment"]["id"]
        assert again.json()["status"] == "succeeded"

    def test_bad_idempotency_key_named(self, api):
        response = api.post("/api/v1/payments/", PAY, format="json", HTTP_IDEMPOTENCY_KEY="a b")
        assert_error(response, 400, "Idempotency-Key")

    def test_list_and_detail_show_only_own(self, api, client_for, other_user):
        mine = pay(api).json()["id"]
        theirs = pay(client_for(other_user)).json()["id"]
        assert [p["id"] for p in api.get("/api/v1/payments/").json()["results"]] == [mine]
        assert api.get(f"/api/v1/payments/{mine}/").status_code == 200
        assert_error(api.get(f"/api/v1/payments/{theirs}/"), 404)

    def test_refund_partial_then_full_then_refused(self, api):
        pid = pay(api).json()["id"]
        partial = api.post(f"/api/v1/payments/{pid}/refund/", {"amount": "40.00"}, format="json")
        assert partial.status_code == 201
        assert partial.json()["amount"] == "40.00"
        too_much = api.post(f"/api/v1/payments/{pid}/refund/", {"amount": "60.00"}, format="json")
        assert_error(too_much, 400, "amount")
        rest = api.post(f"/api/v1/payments/{pid}/refund/", {}, format="json")
        assert rest.status_code == 201
        assert rest.json()["amount"] == "59.99"
        assert_error(api.post(f"/api/v1/payments/{pid}/refund/", {}, format="json"), 409)
        assert api.get(f"/api/v1/payments/{pid}/").json()["amount_refunded"] == "99.99"

    def test_failed_payment_cannot_be_refunded(self, api):
        pid = pay(api, payment_method="pm_card_declined").json()["error"]["payment"]["id"]
        assert_error(api.post(f"/api/v1/payments/{pid}/refund/", {}, format="json"), 409)

    def test_others_payment_cannot_be_refunded(self, api, client_for, other_user):
        theirs = pay(client_for(other_user)).json()["id"]
        assert_error(api.post(f"/api/v1/payments/{theirs}/refund/", {}, format="json"), 404)


BAD_BODIES = [
    (b'{"amount": "99.99", "currency": ', None),  # malformed JSON
    (b'{"amount": "\xff\xfe", "currency": "USD"}', None),  # not UTF-8
    (b"[1, 2, 3]", "non_field_errors"),  # array instead of object
    (json.dumps({**PAY, "amount": "1e400"}).encode(), "amount"),
    (json.dumps({**PAY, "amount": "9" * 5000}).encode(), "amount"),
    (b'{"amount": 1e400, "currency": "USD", "payment_method": "pm_card_visa"}', "amount"),
    (json.dumps({**PAY, "amount": "-5.00"}).encode(), "amount"),
    (json.dumps({**PAY, "amount": "0"}).encode(), "amount"),
    (json.dumps({**PAY, "amount": "1.001"}).encode(), "amount"),
    (json.dumps({**PAY, "amount": "NaN"}).encode(), "amount"),
    (json.dumps({**PAY, "amount": True}).encode(), "amount"),
    (json.dumps({**PAY, "amount": "1000000.00"}).encode(), "amount"),
    (json.dumps({**PAY, "currency": "XXX"}).encode(), "currency"),
    (json.dumps({**PAY, "currency": 840}).encode(), "currency"),
    (json.dumps({**PAY, "payment_method": ["pm_card_visa"]}).encode(), "payment_method"),
    (json.dumps({**PAY, "payment_method": "pm_unknown"}).encode(), "payment_method"),
    (json.dumps({**PAY, "description": "x" * 501}).encode(), "description"),
    (json.dumps({"currency": "USD"}).encode(), "amount"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_payment_input_is_400_naming_the_field(api, body, field):
    response = api.generic("POST", "/api/v1/payments/", body, content_type="application/json")
    assert_error(response, 400, field)
    assert Payment.objects.count() == 0


def test_5000_digit_number_literal_is_400(api):
    body = b'{"amount": ' + b"9" * 5000 + b', "currency": "USD", "payment_method": "pm_card_visa"}'
    response = api.generic("POST", "/api/v1/payments/", body, content_type="application/json")
    assert_error(response, 400)


def test_wrong_content_type_is_415(api):
    response = api.generic("POST", "/api/v1/payments/", "amount=1", content_type="text/plain")
    assert_error(response, 415)


def test_wrong_method_is_405(api):
    assert_error(api.delete("/api/v1/payments/"), 405)


def test_unknown_url_is_json_404(anon):
    response = anon.get("/api/v1/does-not-exist/")
    assert_error(response, 404)


class TestReportsAndAdmin:
    def test_revenue_report_counts_own_net(self, api, client_for, other_user):
        pid = pay(api).json()["id"]
        api.post(f"/api/v1/payments/{pid}/refund/", {"amount": "9.99"}, format="json")
        pay(client_for(other_user))
        report = api.get("/api/v1/reports/revenue/").json()
        assert report["currencies"] == [
            {"currency": "USD", "payments": 1, "gross": "99.99", "refunded": "9.99", "net": "90.00"}
        ]

    def test_payments_report_by_status(self, api):
        pay(api)
        pay(api, payment_method="pm_card_declined")
        report = api.get("/api/v1/reports/payments/").json()
        assert report["by_status"] == {"succeeded": 1, "failed": 1}

    def test_unknown_report_is_404(self, api):
        assert_error(api.get("/api/v1/reports/nope/"), 404, "report_type")

    def test_admin_stats_for_staff(self, client_for, staff):
        response = client_for(staff).get("/api/v1/admin/stats/")
        assert response.status_code == 200
        assert "gross_succeeded" in response.json()

    def test_admin_stats_forbidden_for_users(self, api):
        assert_error(api.get("/api/v1/admin/stats/"), 403)


def test_a_failed_login_writes_one_login_failed_event(logs, user, anon):
    response = anon.post(
        "/api/v1/auth/token/", {"username": "john_doe", "password": "wrong"}, format="json"
    )
    assert response.status_code == 401
    events = [line for line in logs.lines("security") if "login_failed" in line]
    assert len(events) == 1
    assert f"request_id={response['X-Request-ID']} " in events[0]
    assert "username=john_doe" in events[0] and "wrong" not in logs.everything()
