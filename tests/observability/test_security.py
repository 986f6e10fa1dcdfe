"""Secrets and hostile input never reach a log file or stderr; clients cannot forge lines or IPs."""

from __future__ import annotations

import logging
import re
import unicodedata

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.conf import DEFAULT_REDACT_KEYS
from observability.masking.cards import _luhn_ok
from observability.masking.escaping import escape
from observability.masking.redaction import REDACTED, Redactor
from observability.tracing.client_ip import get_client_ip
from tests.conftest import NOT_SLOW, configure_logs

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

CARD = "4111 1111 1111 1111"
CARD_VARIANTS = [
    CARD,
    "4111111111111111",
    "4111-1111-1111-1111",
    "5555555555554444",
    "378282246310005",
    "٤١١١١١١١١١١١١١١١",
]  # the last: Arabic-Indic digits
LINE_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ \[")
redactor = Redactor(DEFAULT_REDACT_KEYS)


def digits_only(text: str) -> str:
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def assert_no_card(text: str) -> None:
    plain = digits_only(text).replace(" ", "").replace("-", "")
    for card in CARD_VARIANTS:
        assert digits_only(card).replace(" ", "").replace("-", "") not in plain


def send_canaries(client: Client, card: str) -> None:
    client.post(
        "/api/v1/auth/token/",
        {"username": "x", "password": "p", "card_number": card},
        content_type="application/json",
    )
    client.get(f"/t/channels/?c={card}", HTTP_USER_AGENT=f"agent {card}", HTTP_X_CUSTOMER_NOTE=card)
    client.get(f"/t/plain/{card.replace(' ', '')}/")
    client.get(f"/t/plain/?q=pay+{card.replace(' ', '+')}&card={card.replace(' ', '')}")
    Client(raise_request_exception=False).get("/t/card-error/")


@pytest.mark.parametrize("card", CARD_VARIANTS)
def test_card_canaries_absent_from_every_file_and_stderr(logs, card, capfd):
    configure_logs(logs.path, console=True)
    client = Client()
    send_canaries(client, card)
    everything = logs.everything()
    assert_no_card(everything)
    assert_no_card(capfd.readouterr().err)
    assert "****" in everything  # masked, last four kept


def test_card_canaries_present_when_redaction_is_off(logs, settings):
    """Positive control: the same channels do carry the number when the policy is off."""
    settings.OBSERVABILITY = {**NOT_SLOW, "REDACT": False}
    send_canaries(Client(), CARD)
    everything = logs.everything()
    for channel in (
        "charging " + CARD,
        "card " + CARD,
        "paid with " + CARD,
        "4111111111111111/",
        "invalid literal for int() with base 10: '" + CARD,
    ):
        assert channel in everything, channel


@pytest.mark.django_db(transaction=True)
def test_passwords_tokens_cookies_never_logged(logs, user, client_for):
    client = Client()
    good = client.post(
        "/api/v1/auth/token/",
        {"username": "john_doe", "password": "s3cret-pass-123"},
        content_type="application/json",
    ).json()
    client.post(
        "/api/v1/auth/token/",
        {"username": "john_doe", "password": "wrong-pass-999"},
        content_type="application/json",
    )
    auth = {
        "HTTP_AUTHORIZATION": f"Bearer {good['access']}",
        "HTTP_COOKIE": "sessionid=cookie-val-777",
    }
    client.get(f"/api/v1/payments/?token={good['refresh']}&password=hunter2-q", **auth)
    client.post(
        "/api/v1/auth/token/refresh/", {"refresh": good["refresh"]}, content_type="application/json"
    )
    Client(raise_request_exception=False).get(
        f"/t/card-error/?access_token={good['access']}", **auth
    )
    logging.getLogger("billing").info("token is %s", good["access"], extra={"cookie": "c=1"})
    everything = logs.everything()
    for secret in (
        "s3cret-pass-123",
        "wrong-pass-999",
        good["access"],
        good["refresh"],
        good["access"].split(".")[1],
        "cookie-val-777",
        "hunter2-q",
    ):
        assert secret not in everything, secret
    assert "token=[REDACTED]" in everything and "password=[REDACTED]" in everything


FORGERIES = [
    "/t/plain/%0d%0a2024-01-01 00:00:00,000 CRITICAL [billing.api] forged/",
    "/t/plain/%c2%85forged/",
    "/t/plain/%e2%80%a8forged%e2%80%a9/",
    "/t/plain/?q=%0d%0aforged%0a",
    "/t/plain/?q=%c2%85forged&r=%e2%80%aeevil",
    "/t/plain/%1b[31mred%1b[0m/",
]


@pytest.mark.parametrize("path", FORGERIES)
def test_forged_lines_never_appear(logs, path):
    Client().get(
        path, HTTP_USER_AGENT="ua\u0085\u2028\r\nforged \xff\xfe", HTTP_X_REQUEST_ID="a\nb"
    )
    Client(raise_request_exception=False).get("/t/boom/")
    for name in ("general", "requests", "security", "errors"):
        text = logs.file(name).read_text(encoding="utf-8") if logs.file(name).exists() else ""
        logs.lines(name)
        for line in text.splitlines():
            assert LINE_START.match(line), (name, line)


def test_long_fields_are_capped(logs):
    Client().get("/t/plain/" + "a" * 5000 + "/", HTTP_USER_AGENT="u" * 5000)
    started = next(line for line in logs.lines("requests") if "started" in line)
    assert len(started) < 4096 + 2048
    assert "more chars]" in started


class TestProperties:
    @given(st.text())
    @hsettings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def test_escaped_text_is_one_line(self, text):
        assert len(escape(text).splitlines()) <= 1

    @given(st.text())
    @hsettings(max_examples=300)
    def test_redaction_is_idempotent(self, text):
        once = redactor.text(text)
        assert redactor.text(once) == once

    @given(
        st.lists(
            st.one_of(
                st.text(alphabet="0123456789 -", min_size=1, max_size=40),
                st.sampled_from(CARD_VARIANTS),
                st.text(max_size=5),
            ),
            max_size=6,
        )
    )
    @hsettings(max_examples=400)
    def test_no_luhn_valid_card_run_survives(self, parts):
        out = redactor.text("".join(parts))
        for match in re.finditer(r"\d(?:[ \-]?\d)*", out):
            digits = [unicodedata.digit(c) for c in match.group() if c.isdigit()]
            for size in range(13, min(len(digits), 19) + 1):
                for start in range(len(digits) - size + 1):
                    assert not _luhn_ok(digits[start : start + size]), out

    def test_our_ids_and_dates_are_not_mangled(self):
        # A full timestamp in free text ("2026-11-26 17:00:27,041": 17 digits, separators
        # between) can hold a Luhn-valid window and is masked like a card written with any
        # separators (issue #10). A line's own timestamp is written by the formatter, after
        # redaction: test_forged_lines_never_appear checks it on every line.
        for text in (
            "request_id=0b6f4a1c-9d2e-4f3a-8b1c-2d3e4f5a6b7c",
            "1764172800123",
            "2026-11-26",
        ):
            assert redactor.text(text) == text


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("access_token", True),
        ("X-Api-Key", True),
        ("cardNumber", True),
        ("HTTP_AUTHORIZATION", True),
        ("cvv", True),
        ("refresh", True),
        ("shipping", False),
        ("company", False),
        ("payment_id", False),
        ("amount", False),
    ],
)
def test_sensitive_keys(key, sensitive):
    assert redactor.is_sensitive_key(key) is sensitive


def test_nested_keys_masked_at_any_depth():
    value = {"a": [{"b": {"password": "x", "ok": 1}}], "api_key": "k"}
    assert redactor.value(value) == {
        "a": [{"b": {"password": REDACTED, "ok": 1}}],
        "api_key": REDACTED,
    }


def test_jwt_and_bearer_masked_in_free_text():
    text = "auth Bearer abc.def-ghi and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-part_1"
    out = redactor.text(text)
    assert "abc.def-ghi" not in out and "eyJzdWIiOiIxIn0" not in out


class TestClientIp:
    def test_no_trusted_proxy_ignores_forwarded_for(self):
        meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
        assert get_client_ip(meta, 0) == "10.0.0.1"

    def test_one_trusted_proxy_takes_rightmost_client_never_leftmost(self):
        meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"}
        assert get_client_ip(meta, 1) == "203.0.113.5"

    def test_two_proxies(self):
        meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5, 10.0.0.1"}
        assert get_client_ip(meta, 2) == "203.0.113.5"

    def test_networks_walk_from_the_right(self):
        meta = {
            "REMOTE_ADDR": "10.0.0.2",
            "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.1, 10.0.0.9",
        }
        assert get_client_ip(meta, ["10.0.0.0/8"]) == "198.51.100.1"
        assert get_client_ip({**meta, "REMOTE_ADDR": "8.8.8.8"}, ["10.0.0.0/8"]) == "8.8.8.8"

    @pytest.mark.parametrize("header", ["not-an-ip", "", "1.2.3.4\r\n", ", , ,", "999.1.1.1"])
    def test_malformed_header_never_changes_ip_without_proxy(self, header):
        assert (
            get_client_ip({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": header}, 0)
            == "10.0.0.1"
        )

    def test_malformed_hop_falls_back_to_remote(self):
        meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "garbage"}
        assert get_client_ip(meta, 1) == "10.0.0.1"

    def test_spoofed_header_in_a_real_request(self, logs):
        Client(REMOTE_ADDR="127.0.0.1").get("/t/plain/", HTTP_X_FORWARDED_FOR="192.168.1.100")
        assert "ip=127.0.0.1 " in logs.lines("requests")[0]
        assert "192.168.1.100" not in logs.everything()


class TestFaults:
    def test_parent_is_a_regular_file_serves_200s_and_warns_once_per_file(self, tmp_path, capfd):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        configure_logs(blocker / "logs")
        for _ in range(5):
            assert Client().get("/t/plain/").status_code == 200
        from observability import flush_logs

        flush_logs()
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if "cannot write" in line]
        assert 1 <= len(lines) <= 2  # requests file and general file, once each
        assert all("NotADirectoryError" in line for line in lines)
        assert "plain view ran" not in err

    def test_write_errors_count_report_once_and_recover(self, logs, monkeypatch, capfd):
        from observability import flush_logs, log_stats
        from observability.output import rotation

        original = rotation.BatchRotatingFile.do_write
        failing = {"on": True}

        def do_write(self, text):
            if failing["on"]:
                raise OSError(28, "No space left on device")
            return original(self, text)

        # A full disk cannot be made for real here (root ignores quotas): the library's
        # own write raises as the OS would.
        monkeypatch.setattr(rotation.BatchRotatingFile, "do_write", do_write)
        before = log_stats()["dropped_write_errors"]
        for _ in range(3):
            assert Client().get("/t/plain/").status_code == 200
            flush_logs()
        err = capfd.readouterr().err
        assert log_stats()["dropped_write_errors"] >= before + 6
        assert err.count("No space left on device") == 2  # general + requests file, once each
        assert "plain view ran" not in err
        failing["on"] = False
        response = Client().get("/t/plain/")
        assert logs.for_request(response["X-Request-ID"])  # resumed by itself
        assert "writing to" in capfd.readouterr().err

    def test_file_deleted_under_the_handler_is_recreated(self, logs):
        Client().get("/t/plain/")
        logs.lines("requests")
        logs.file("requests").unlink()
        response = Client().get("/t/plain/")
        assert len(logs.for_request(response["X-Request-ID"])) == 2


def test_boots_when_log_dir_parent_is_a_regular_file(tmp_path):
    """A LOG_BASE_DIR that cannot exist costs log lines, never the boot."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, "LOG_BASE_DIR": str(blocker / "logs"), "LOG_CONSOLE": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "test_logging"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 1  # the command reports the files it could not write...
    assert "MISSING FILE" in result.stdout
    check = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr  # ...but Django boots


def test_bound_fields_are_redacted_in_every_record(logs):
    """bind() values reach every record, lifecycle lines included: they are masked at bind."""
    from django.http import HttpResponse

    from observability import bind
    from observability.middleware import RequestLoggingMiddleware

    def view(request):
        bind(password="hunter2-bound", note=f"card {CARD}", payment_id=7)
        logging.getLogger("billing").info("after bind")
        return HttpResponse("ok")

    from django.test import RequestFactory

    RequestLoggingMiddleware(view)(RequestFactory().get("/x/"))
    everything = logs.everything()
    assert "hunter2-bound" not in everything
    assert_no_card(everything)
    assert "payment_id=7" in logs.text("requests")
