"""Login throttling and auditing: the token endpoint and the admin's login page.

A password check costs ~250 ms of CPU (PBKDF2). The throttles bound the checks one client
can make, per client (an IPv4 address, an IPv6 /64) and per (username, client), so a user
at their own address can always log in while someone else hammers their username; refused
attempts never reach the password hasher. Time is frozen inside one throttle window, so
no test depends on how fast the machine is.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from rest_framework.test import APIClient

from observability.guard.flood import guard
from tests.conftest import NOT_SLOW, parse_tokens

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
ADMIN_LOGIN = "/admin/login/"
ATTACKER = "203.0.113.9"
HOME = "198.51.100.7"
# Inside one minute (the throttle windows are whole minutes, hours, days): frozen there,
# a run never crosses a window's end however slow the machine is.
INSIDE_A_WINDOW = "2031-03-01 12:00:05"


class CountingHasher(MD5PasswordHasher):
    """The test suite's fast hasher, counting every password it hashes or checks."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def frozen():
    with freeze_time(INSIDE_A_WINDOW) as freezer:
        yield freezer


@pytest.fixture
def hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.billing.test_login_throttle.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


@pytest.fixture
def rates(settings):
    def set_rates(client: str = "20/min", username: str = "5/min") -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"login_client": client, "login_username": username},
        }

    return set_rates


def api_from(address: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def login(client, username="john_doe", password="wrong-guess-1", **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def statuses(responses) -> list[int]:
    return [response.status_code for response in responses]


def events(logs, event_type: str) -> list[dict[str, str]]:
    return [
        parse_tokens(line)
        for line in logs.lines("security")
        if f"event_type={event_type} " in line + " "
    ]


# --- The token endpoint ------------------------------------------------------------------


def test_the_sixth_attempt_for_one_username_from_one_client_is_a_429(user):
    client = api_from(ATTACKER)
    assert statuses(login(client) for _ in range(5)) == [401] * 5
    refused = login(client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 55  # the window (a whole minute) ends at 12:01:00
    error = refused.json()["error"]
    assert set(refused.json()) == {"error"}
    assert error["status"] == 429 and error["code"] == "login_throttled"
    assert error["message"] == (
        "Too many login attempts for this username from your address. Try again in 55 seconds."
    )
    assert error["request_id"] == refused["X-Request-ID"]


def test_refused_attempts_never_run_the_password_hasher(user, hasher):
    client = api_from(ATTACKER)
    for _ in range(5):
        login(client)
    checked = hasher.calls
    assert checked == 5
    # Refused: wrong passwords, the right one, and unknown usernames' budgets are untouched.
    assert statuses(login(client) for _ in range(30)) == [429] * 30
    assert login(client, password="s3cret-pass-123").status_code == 429
    assert hasher.calls == checked


def test_a_refused_attempt_only_reads_the_cache(user, settings):
    """Bounded work (THREATS 7): a refusal is two reads of the cache table, no write.

    (Flood control's shared budgets, FLOOD_CACHE, take a slot for each security line
    written one by one, at most FLOOD_GLOBAL_LIMIT a window: their own bounded cost, kept
    in this process here.)"""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "FLOOD_CACHE": None}
    client = api_from(ATTACKER)
    for _ in range(5):
        login(client)
    with CaptureQueriesContext(connection) as queries:
        assert login(client).status_code == 429
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) == 2, statements
    assert all(sql.startswith("SELECT") and "billing_cache" in sql for sql in statements)


def test_an_attacker_elsewhere_cannot_lock_the_user_out(user, hasher):
    attacker = api_from(ATTACKER)
    refused = statuses(login(attacker) for _ in range(40))
    assert refused[:5] == [401] * 5 and set(refused[5:]) == {429}
    # The user, at home, still logs in at once; and mistyping there is theirs alone to spend.
    home = api_from(HOME)
    assert login(home, password="typo").status_code == 401
    assert login(home, password="s3cret-pass-123").status_code == 200
    assert hasher.calls == 5 + 2


def test_one_client_trying_many_usernames_is_stopped_by_the_per_client_limit(user, hasher):
    client = api_from(ATTACKER)
    tried = statuses(login(client, username=f"user{n}") for n in range(20))
    assert tried == [401] * 20
    refused = login(client, username="someone-new")
    assert refused.status_code == 429
    assert refused.json()["error"]["message"] == (
        "Too many login attempts from your address. Try again in 55 seconds."
    )
    assert hasher.calls == 20
    assert login(api_from(HOME), username="someone-new").status_code == 401  # another client


def test_an_ipv6_64_is_one_client(user):
    tried = [
        login(api_from(f"2001:db8:1:2::{n:x}"), username=f"user{n}").status_code
        for n in range(1, 21)
    ]
    assert tried == [401] * 20
    assert login(api_from("2001:db8:1:2:ffff::1"), username="x").status_code == 429
    assert login(api_from("2001:db8:1:3::1"), username="x").status_code == 401  # next /64
    # IPv4 written as IPv4-mapped IPv6 is the same IPv4 client.
    for _ in range(5):
        login(api_from("192.0.2.1"))
    assert login(api_from("::ffff:192.0.2.1")).status_code == 429


def test_an_ipv6_address_that_reads_like_a_card_number_is_still_its_64(user):
    """The logs mask such an address (its low 64 bits are the client's to choose); the
    throttle counts the address itself: it stays in its /64's budget, never in one shared
    by every client the logs cannot show."""
    card_like = "4111:1111:1111:1111"
    tried = [
        login(api_from(f"2001:db8:1:2::{n:x}"), username=f"user{n}").status_code
        for n in range(1, 21)
    ]
    assert tried == [401] * 20
    assert login(api_from(f"2001:db8:1:2:{card_like}"), username="x").status_code == 429
    assert login(api_from(f"2001:db8:9:9:{card_like}"), username="x").status_code == 401


def test_card_like_ipv6_clients_each_have_their_own_budget(user):
    """The budgets count the parsed address, not the text the logs show: an IPv6 client
    whose address reads as a card is logged masked, and used to count as "no address",
    one budget shared with every other such client (and a Unix socket's)."""
    first, second = "2001:db8:1:2:4111:1111:1111:1111", "2001:db8:9:9:4111:1111:1111:1111"
    tried = [login(api_from(first), username=f"u{n}").status_code for n in range(21)]
    assert tried == [401] * 20 + [429]
    assert login(api_from(second), username="x").status_code == 401  # another /64
    # The same /64 written with another card-like low half is the same client.
    assert login(api_from("2001:db8:1:2:5500:0000:0000:0004")).status_code == 429
    # A client without an address (a Unix socket) keeps its own budget.
    assert login(api_from(""), username="y").status_code == 401


def test_a_forged_x_forwarded_for_does_not_buy_a_new_budget(user):
    """With no trusted proxy the client's own X-Forwarded-For is ignored (README, Client IP)."""
    client = api_from(ATTACKER)
    tried = [
        login(client, username=f"u{n}", HTTP_X_FORWARDED_FOR=f"10.0.{n}.1").status_code
        for n in range(21)
    ]
    assert tried == [401] * 20 + [429]


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(user, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    proxy = api_from("10.1.2.3")
    for _ in range(5):
        login(proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert login(proxy, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429
    good = login(proxy, password="s3cret-pass-123", HTTP_X_FORWARDED_FOR=HOME)
    assert good.status_code == 200  # the proxy's other clients are not the attacker


def test_username_variants_share_one_budget(user):
    """Whitespace the serializer strips, case and compatibility forms are one username."""
    client = api_from(ATTACKER)
    variants = ["john_doe", " john_doe", "JOHN_DOE", "John_Doe\t", "\uff4aohn_doe"]
    assert statuses(login(client, username=name) for name in variants) == [401] * 5
    assert login(client, username="jOhN_dOe ").status_code == 429


def test_a_success_resets_the_usernames_budget_but_not_the_clients(user, rates):
    rates(client="8/min", username="3/min")
    client = api_from(HOME)
    assert statuses(login(client) for _ in range(2)) == [401, 401]
    assert login(client, password="s3cret-pass-123").status_code == 200
    # Three more for this username (the success started it afresh) ...
    assert statuses(login(client) for _ in range(3)) == [401] * 3
    assert login(client).status_code == 429
    # ... while the client's budget counts every password checked: 2 + 1 + 3 = 6 of 8.
    assert statuses(login(client, username=f"other{n}") for n in range(3)) == [401, 401, 429]


def test_refusals_spend_no_budget_of_the_other_throttle(user, rates):
    """A client refused for one username keeps its budget for the others (a shared NAT)."""
    rates(client="8/min", username="2/min")
    client = api_from(ATTACKER)
    assert statuses(login(client) for _ in range(12)) == [401, 401] + [429] * 10
    assert statuses(login(client, username=f"u{n}") for n in range(7)) == [401] * 6 + [429]


def test_the_window_ends_and_the_budget_comes_back(user, frozen):
    client = api_from(ATTACKER)
    for _ in range(5):
        login(client)
    refused = login(client)
    assert refused.status_code == 429
    frozen.tick(int(refused["Retry-After"]))
    assert login(client).status_code == 401


def test_a_throttled_login_is_a_security_event_without_the_password(logs, user):
    client = api_from(ATTACKER)
    for _ in range(5):
        login(client, password="hunter2-canary")
    refused = login(client, username="JOHN_DOE", password="hunter2-canary")
    (event,) = events(logs, "login_throttled")
    assert event["request_id"] == refused["X-Request-ID"]
    assert event["ip"] == ATTACKER and event["severity"] == "warning"
    assert event["scope"] == "login_username" and event["retry_after"] == "55"
    # what the client sent, masked by the layer; a detail, never the context's username
    assert event["details.username"] == "JOHN_DOE"
    assert "hunter2-canary" not in logs.everything()
    assert "hunter2-canary" not in refused.content.decode()


def test_a_username_holding_a_card_number_is_masked_whole_in_every_login_event(logs, user):
    """Mask first, then cut: the layer gets the whole username (THREATS 2)."""
    client = api_from(ATTACKER)
    name = "x" * 140 + "4111 1111 1111 1111"
    for _ in range(5):
        login(client, username=name)
    failed = logs.text("security")
    assert "event_type=login_failed" in failed
    assert "4111 1" not in failed and "****1111" in failed
    login(client, username=name)
    throttled = logs.text("security")
    assert "event_type=login_throttled" in throttled
    assert "4111 1" not in throttled


def test_throttle_events_are_flood_controlled_with_an_exact_count(logs, user, settings, frozen):
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 5, "FLOOD_WINDOW": 60}
    client = api_from(ATTACKER)
    for _ in range(5):
        login(client)
    assert statuses(login(client) for _ in range(200)) == [429] * 200
    frozen.tick(61)  # the flood window (60 s from its first event) is over
    guard.sweep()
    lines = [line for line in logs.lines("security") if "event_type=login_throttled " in line]
    summaries = [parse_tokens(line) for line in lines if " repeated=" in line]
    assert len(lines) - len(summaries) == 5
    assert sum(int(summary["repeated"]) for summary in summaries) == 195


def test_other_traffic_in_the_shared_cache_does_not_evict_the_counts(user):
    """The database cache culls a third of its rows past MAX_ENTRIES (Django's default: 300):
    with that default, other clients' attempts (here 400 other rows) would wipe the
    attacker's count and hand back their budget."""
    from django.core.cache import cache

    client = api_from(ATTACKER)
    for _ in range(5):
        login(client)
    # Other traffic's rows, sorting after the throttle's keys: a cull would take ours first.
    cache.set_many({f"~other-traffic-{n}": n for n in range(400)}, 120)
    assert statuses(login(client) for _ in range(10)) == [429] * 10


def test_a_successful_login_event_carries_the_users_id(logs, user):
    response = login(api_from(HOME), password="s3cret-pass-123")
    assert response.status_code == 200
    (event,) = events(logs, "login_succeeded")
    assert event["user_id"] == str(user.pk) and event["username"] == "john_doe"
    completed = logs.for_request(response["X-Request-ID"])[-1]
    assert parse_tokens(completed)["user_id"] == str(user.pk)


def test_a_dead_throttle_store_is_a_503_not_a_500(user, settings):
    """Redis gone (CACHE_URL): the login answers 503 with Retry-After and checks no password."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # discard port: nothing listens
        }
    }
    response = login(api_from(HOME), password="s3cret-pass-123")
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "throttle_unavailable"


# --- Bad input at the login surfaces (THREATS 9) -----------------------------------------

CANARY = "pw-canary-7781"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": "john_doe"}, "password"),
        ({"password": CANARY}, "username"),
        ({"username": ["john_doe"], "password": CANARY}, "username"),
        ({"username": {"$ne": ""}, "password": CANARY}, "username"),
        ({"username": None, "password": CANARY}, "username"),
        ({"username": True, "password": CANARY}, "username"),
        ({"username": "", "password": CANARY}, "username"),
        ({"username": "john_doe", "password": [CANARY]}, "password"),
        ({"username": "john_doe", "password": {"p": CANARY}}, "password"),
        ({"username": "john_doe", "password": ""}, "password"),
        ([CANARY], "non_field_errors"),
        (CANARY, "non_field_errors"),
        (7, "non_field_errors"),
    ],
)
def test_a_malformed_login_is_a_400_naming_the_field_without_the_password(
    logs, user, hasher, body, field
):
    response = api_from(HOME).post(TOKEN, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] and error["request_id"] == response["X-Request-ID"]
    assert CANARY not in response.content.decode()
    assert CANARY not in logs.everything()
    assert hasher.calls == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "refresh"),
        ({"refresh": ["x"]}, 400, "refresh"),
        ({"refresh": None}, 400, "refresh"),
        ({"refresh": ""}, 400, "refresh"),
        ({"refresh": f"not-a-jwt-{CANARY}"}, 401, None),
        ({"refresh": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0." + "A" * 43}, 401, None),
        ({"refresh": "a." * 50_000}, 401, None),
    ],
)
def test_a_bad_refresh_is_a_clear_4xx_that_does_not_echo_the_token(logs, body, status, field):
    response = api_from(HOME).post(REFRESH, body, format="json")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["request_id"] == response["X-Request-ID"]
    if field is not None:
        assert field in error["fields"]
    shown = response.content.decode() + logs.everything()
    assert CANARY not in shown and "A" * 43 not in shown


def test_an_access_token_is_no_refresh_token(logs, user):
    tokens = login(api_from(HOME), password="s3cret-pass-123").json()
    response = api_from(HOME).post(REFRESH, {"refresh": tokens["access"]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    assert tokens["access"] not in response.content.decode() + logs.everything()


def test_a_megabyte_username_is_one_password_check_and_a_capped_event(logs, user, hasher):
    """Bounded work per input (THREATS 7): one check, the event's username capped."""
    response = login(api_from(HOME), username="u" * 1_000_000)
    assert response.status_code == 401
    assert hasher.calls == 1
    (line,) = [line for line in logs.lines("security") if "event_type=login_failed " in line]
    assert len(line) < 20_000  # the layer caps the username it logs


# --- The admin's login page (it guards the trace viewer) ---------------------------------


def admin_from(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def admin_login(client: Client, username="admin", password="wrong-guess-1"):
    return client.post(
        f"{ADMIN_LOGIN}?next=/ops/requests/",
        {"username": username, "password": password, "next": "/ops/requests/"},
    )


def test_a_failed_staff_login_is_a_security_event_without_the_password(logs, staff):
    name = "admin 4111-1111-1111-1111"
    response = admin_login(admin_from(ATTACKER), username=name, password="hunter2-canary")
    assert response.status_code == 200  # the form again, with its error
    (event,) = events(logs, "admin_login_failed")
    assert event["request_id"] == response["X-Request-ID"] and event["ip"] == ATTACKER
    assert event["severity"] == "warning" and event["reason"] == "invalid_credentials"
    assert event["details.username"] == "admin ****1111"  # typed: a detail, not the context
    everything = logs.everything()
    assert "hunter2-canary" not in everything and "4111-1111" not in everything
    assert "hunter2-canary" not in response.content.decode()


def test_a_customers_right_password_on_the_admin_is_a_failed_staff_login(logs, user):
    response = admin_login(admin_from(HOME), username="john_doe", password="s3cret-pass-123")
    assert response.status_code == 200
    (event,) = events(logs, "admin_login_failed")
    assert event["reason"] == "not_staff" and event["details.username"] == "john_doe"


def test_a_successful_staff_login_is_a_security_event_with_the_users_id(logs, staff):
    response = admin_login(admin_from(HOME), password="admin-pass-789")
    assert response.status_code == 302 and response["Location"] == "/ops/requests/"
    (event,) = events(logs, "admin_login_succeeded")
    assert event["severity"] == "info" and event["user_id"] == str(staff.pk)
    assert event["username"] == "admin" and "admin-pass-789" not in logs.everything()


def test_the_admin_login_is_throttled_with_a_429_page_and_an_event(logs, staff, hasher):
    client = admin_from(ATTACKER)
    assert statuses(admin_login(client) for _ in range(5)) == [200] * 5
    checked = hasher.calls
    refused = admin_login(client, password="admin-pass-789")  # even the right password
    assert refused.status_code == 429
    assert refused["Retry-After"] == "55"
    page = refused.content.decode()
    assert (
        '<p class="errornote">\n    Too many login attempts for this username from your '
        "address. Try again in 55 seconds.\n</p>"
    ) in page
    assert 'id="login-form"' in page and "admin-pass-789" not in page
    assert hasher.calls == checked  # no password was checked
    (event,) = events(logs, "admin_login_throttled")
    assert event["scope"] == "login_username" and event["retry_after"] == "55"
    assert event["details.username"] == "admin" and event["ip"] == ATTACKER
    assert len(events(logs, "admin_login_failed")) == 5


def test_an_attacker_elsewhere_cannot_lock_staff_out_of_the_admin(staff):
    attacker = admin_from(ATTACKER)
    tried = statuses(admin_login(attacker) for _ in range(30))
    assert tried[:5] == [200] * 5 and set(tried[5:]) == {429}
    home = admin_from(HOME)
    logged_in = admin_login(home, password="admin-pass-789")
    assert logged_in.status_code == 302
    assert home.get("/ops/requests/").status_code == 200


def test_the_admin_page_and_the_token_endpoint_share_one_budget(staff):
    """One password, one budget: switching surface buys no more guesses."""
    for _ in range(3):
        assert login(api_from(ATTACKER), username="admin").status_code == 401
    assert statuses(admin_login(admin_from(ATTACKER)) for _ in range(3)) == [200, 200, 429]
    assert login(api_from(ATTACKER), username="admin").status_code == 429


def test_a_successful_staff_login_resets_its_username_budget(staff):
    client = admin_from(HOME)
    assert statuses(admin_login(client) for _ in range(4)) == [200] * 4
    assert admin_login(client, password="admin-pass-789").status_code == 302
    client = admin_from(HOME)  # a new session: the login form again
    assert statuses(admin_login(client) for _ in range(5)) == [200] * 5
    assert admin_login(client).status_code == 429


def test_an_empty_admin_form_is_a_failed_login_without_a_password_check(logs, staff, hasher):
    response = admin_from(HOME).post(ADMIN_LOGIN, {"username": "admin"})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    (event,) = events(logs, "admin_login_failed")
    assert event["reason"] == "incomplete"
    assert hasher.calls == 0


@pytest.mark.urls("tests.billing.urls_admin_direct")
def test_any_route_to_the_admin_sites_login_is_throttled_and_audited(logs, staff, hasher):
    """The throttle and the events live in the admin site's login form, not in one URL."""
    client = admin_from(ATTACKER)
    assert statuses(admin_login(client) for _ in range(5)) == [200] * 5
    checked = hasher.calls
    refused = admin_login(client, password="admin-pass-789")
    assert "Too many login attempts for this username" in refused.content.decode()
    assert hasher.calls == checked
    assert len(events(logs, "admin_login_failed")) == 5
    assert len(events(logs, "admin_login_throttled")) == 1


def test_a_dead_throttle_store_is_a_503_page_on_the_admin(staff, settings, hasher):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    response = admin_login(admin_from(HOME), password="admin-pass-789")
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert "Logins are briefly unavailable; retry in a moment." in response.content.decode()
    assert hasher.calls == 0


def test_the_admin_login_page_itself_is_not_throttled(staff):
    client = admin_from(ATTACKER)
    for _ in range(6):
        admin_login(client)
    assert client.get(ADMIN_LOGIN).status_code == 200


# --- Configuration -------------------------------------------------------------------------


def test_the_default_rates_are_five_per_username_and_client_and_twenty_per_client():
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"login_client": "20/min", "login_username": "5/min"}


@pytest.mark.parametrize("name", ["LOGIN_THROTTLE_CLIENT_RATE", "LOGIN_THROTTLE_USERNAME_RATE"])
@pytest.mark.parametrize("value", ["20", "0/min", "-1/min", "20/fortnight", "20 per min", "x/s"])
def test_a_bad_rate_stops_start_up_naming_variable_rule_and_value(monkeypatch, name, value):
    from django.core.exceptions import ImproperlyConfigured

    from tests.config.test_settings import load

    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, **{name: value})
    message = str(error.value)
    assert name in message and repr(value) in message
    assert re.search(r"must be a rate such as 20/min", message), message


def test_rates_from_the_environment(monkeypatch):
    from tests.config.test_settings import load

    settings = load(
        monkeypatch, LOGIN_THROTTLE_CLIENT_RATE="100/hour", LOGIN_THROTTLE_USERNAME_RATE=" 3/m "
    )
    rates = settings["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert rates == {"login_client": "100/hour", "login_username": "3/m"}


def test_the_admin_login_form_without_its_request_checks_no_password(staff, hasher):
    """The admin site always hands the form its request; without one there is no client to
    count, so the form refuses to run rather than share one budget among all such calls."""
    from django.core.exceptions import ImproperlyConfigured

    from billing.admin import ThrottledAdminAuthenticationForm

    form = ThrottledAdminAuthenticationForm(data={"username": "admin", "password": "x-y-z-1"})
    with pytest.raises(ImproperlyConfigured, match="needs its request"):
        form.is_valid()
    assert hasher.calls == 0
