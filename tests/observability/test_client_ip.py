"""The client IP comes from the hop our proxies appended, however long or malformed the header.

Here REMOTE_ADDR is the proxy in front of us (PROXY); the proxy appended the remote client's
address (CLIENT) to whatever X-Forwarded-For the client wrote. Everything left of that hop is
the client's to choose, and it chooses 127.0.0.1 (the loopback /metrics lets in by default).
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from django.test import Client

from observability.tracing import client_ip
from observability.tracing.client_ip import get_client_ip
from tests.conftest import NOT_SLOW, parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

PROXY = "10.0.0.1"  # REMOTE_ADDR: the proxy in front of us
CLIENT = "203.0.113.7"  # the remote client, as the proxy appended it
CHOSEN = "127.0.0.1"  # what the client writes, hoping to be read as it
LENGTHS = [4095, 4096, 4097, 8190, 65536]


def written(last: str, length: int) -> str:
    """An X-Forwarded-For as a client writes it: exactly `length` characters, `last` at its end."""
    hops = "198.51.100.1, " * ((length - len(last)) // 14)
    return " " * (length - len(last) - len(hops)) + hops + last


def forwarded_by_proxy(client_part: str) -> str:
    """What the proxy passes on: the client's header, then the client's real address."""
    return f"{client_part}, {CLIENT}"


def request_lines(logs, response) -> list[str]:
    lines = logs.for_request(response["X-Request-ID"])
    assert lines, "no lifecycle lines for the request"
    return lines


def ips(lines: list[str]) -> set[str]:
    return {parse_tokens(line)["ip"] for line in lines}


class TestReadFromTheRight:
    @pytest.mark.parametrize("length", LENGTHS)
    @pytest.mark.parametrize("proxies", [1, ["10.0.0.0/8"]], ids=["count", "networks"])
    def test_a_long_header_never_lets_the_client_choose_its_ip(
        self, logs, settings, length, proxies
    ):
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": proxies}
        header = forwarded_by_proxy(written(CHOSEN, length))
        response = Client(REMOTE_ADDR=PROXY).get("/t/plain/", HTTP_X_FORWARDED_FOR=header)
        lines = request_lines(logs, response)
        assert ips(lines) == {CLIENT}
        assert f"IP: {CLIENT}," in lines[0]

    @pytest.mark.parametrize("length", LENGTHS)
    def test_a_long_header_never_opens_the_metrics(self, logs, settings, length):
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}  # METRICS_ALLOWED_IPS: loopback
        header = forwarded_by_proxy(written(CHOSEN, length))
        response = Client(REMOTE_ADDR=PROXY).get("/metrics", HTTP_X_FORWARDED_FOR=header)
        assert response.status_code == 404
        (event,) = [line for line in logs.lines("security") if "metrics_access_refused" in line]
        assert parse_tokens(event)["ip"] == CLIENT
        # The monitoring host on loopback behind the same proxy still reads them.
        allowed = Client(REMOTE_ADDR=PROXY).get("/metrics", HTTP_X_FORWARDED_FOR=CHOSEN)
        assert allowed.status_code == 200

    @pytest.mark.parametrize("length", LENGTHS)
    def test_two_proxies_read_the_second_hop_from_the_right(self, length):
        header = forwarded_by_proxy(written(CHOSEN, length)) + ", 10.0.0.5"
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": header}
        assert get_client_ip(meta, 2) == CLIENT
        assert get_client_ip(meta, ["10.0.0.0/8"]) == CLIENT

    @pytest.mark.parametrize("separator", [",", ", "])
    @pytest.mark.parametrize("client_header", [CHOSEN, written(CHOSEN, 8000)])
    def test_many_headers_joined_by_the_server_end_with_the_proxys_hop(
        self, separator, client_header
    ):
        """WSGI and ASGI servers join repeated headers in order; the proxy's comes last."""
        header = separator.join([client_header] * 99 + [CLIENT])
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": header}
        assert get_client_ip(meta, 1) == CLIENT
        assert get_client_ip(meta, ["10.0.0.0/8"]) == CLIENT

    def test_empty_elements_are_skipped_as_http_lists_say(self):
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CHOSEN},, ,{CLIENT}"}
        assert get_client_ip(meta, 1) == CLIENT


GARBAGE = [
    "x" * 5000,
    "1" * 5000,
    "unknown",
    "_hidden",  # RFC 7239's obfuscated identifier
    "127.0.0.1 127.0.0.1",
    "127.0.0.1;for=127.0.0.1",
    "127.0.0.1:junk",
    "127.0.0.1:99999",
    "[127.0.0.1",
    "[::1]x",
    "0x7f.0.0.1",
    "127.1",
    "2130706433",
    "\uff11\uff12\uff17.0.0.1",  # fullwidth digits
    "127.0.0.1\x00",
    "fe80::1%" + "4" * 40,
]


class TestMalformed:
    @pytest.mark.parametrize("garbage", GARBAGE)
    def test_garbage_where_the_proxys_hop_must_be_falls_back_to_the_peer(self, garbage):
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CHOSEN}, {garbage}"}
        assert get_client_ip(meta, 1) == PROXY

    @pytest.mark.parametrize("garbage", GARBAGE)
    def test_garbage_between_two_proxies_hops_falls_back_to_the_peer(self, garbage):
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CHOSEN}, {CLIENT}, {garbage}"}
        assert get_client_ip(meta, 2) == PROXY

    @pytest.mark.parametrize("garbage", GARBAGE)
    def test_garbage_in_a_networks_walk_stops_at_the_last_trusted_hop(self, garbage):
        header = f"{CHOSEN}, {garbage}, 10.0.0.9"
        meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": header}
        assert get_client_ip(meta, ["10.0.0.0/8"]) == "10.0.0.9"

    def test_too_few_hops_fall_back_to_the_peer(self):
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CHOSEN}
        assert get_client_ip(meta, 2) == PROXY

    @pytest.mark.parametrize("header", ["," * 65536, " ," * 32768, ", " * 32768])
    def test_a_header_of_empty_elements_falls_back_to_the_peer(self, header):
        meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": header}
        assert get_client_ip(meta, 1) == PROXY
        assert get_client_ip(meta, ["10.0.0.0/8"]) == PROXY

    def test_a_valid_hop_with_a_port_is_read(self):
        for hop, address in [("203.0.113.7:443", CLIENT), ("[2001:db8::7]:443", "2001:db8::7")]:
            meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CHOSEN}, {hop}"}
            assert get_client_ip(meta, 1) == address


class TestOtherForwardingHeaders:
    """Only X-Forwarded-For is read: Forwarded (RFC 7239), X-Real-IP & co. are ignored."""

    HEADERS = {
        "HTTP_FORWARDED": f'for={CHOSEN};proto=https, for="[::1]"',
        "HTTP_X_REAL_IP": CHOSEN,
        "HTTP_TRUE_CLIENT_IP": CHOSEN,
        "HTTP_CF_CONNECTING_IP": CHOSEN,
        "HTTP_X_CLIENT_IP": CHOSEN,
    }

    @pytest.mark.parametrize("proxies", [0, 1, ["10.0.0.0/8"]])
    def test_they_never_change_the_ip(self, logs, settings, proxies):
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": proxies}
        client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT, **self.HEADERS)
        response = client.get("/t/plain/")
        assert ips(request_lines(logs, response)) == {CLIENT if proxies else PROXY}
        assert client.get("/metrics").status_code == 404


class TestIpv4Mapped:
    def test_a_dual_stack_peer_is_recognised_as_a_trusted_proxy(self):
        meta = {"REMOTE_ADDR": "::ffff:10.0.0.2", "HTTP_X_FORWARDED_FOR": f"{CHOSEN}, {CLIENT}"}
        assert get_client_ip(meta, ["10.0.0.0/8"]) == CLIENT

    def test_a_mapped_trusted_hop_is_walked_past(self):
        header = f"{CHOSEN}, {CLIENT}, ::ffff:10.0.0.9"
        meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": header}
        assert get_client_ip(meta, ["10.0.0.0/8"]) == CLIENT

    def test_networks_written_in_mapped_form_trust_ipv4_peers(self):
        meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": f"{CHOSEN}, {CLIENT}"}
        assert get_client_ip(meta, ["::ffff:10.0.0.0/104"]) == CLIENT

    def test_a_mapped_address_is_logged_as_its_ipv4_address(self, logs):
        response = Client(REMOTE_ADDR="::ffff:192.168.1.100").get("/t/plain/")
        lines = request_lines(logs, response)
        assert ips(lines) == {"192.168.1.100"}
        assert all(re.search("ip.*192.168.1.100", line) for line in lines)  # the seed's recipe

    def test_incoming_ids_are_taken_from_a_dual_stack_trusted_proxy_only(self, logs, settings):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "TRUSTED_PROXIES": ["10.0.0.0/8"],
            "TRUST_INCOMING_REQUEST_ID": "proxies",
        }
        for peer, adopted in [("::ffff:10.0.0.2", True), ("::ffff:198.51.100.9", False)]:
            client = Client(REMOTE_ADDR=peer, HTTP_X_REQUEST_ID=f"caller-{adopted}")
            assert (client.get("/t/plain/")["X-Request-ID"] == f"caller-{adopted}") is adopted

    def test_a_client_written_mapped_loopback_never_opens_the_metrics(self, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
        header = forwarded_by_proxy("::ffff:127.0.0.1")
        response = Client(REMOTE_ADDR=PROXY).get("/metrics", HTTP_X_FORWARDED_FOR=header)
        assert response.status_code == 404


class CountingText(str):
    """A header that counts the characters its methods look at (the work done on it)."""

    read = 0

    def _span(self, start: int | None = None, end: int | None = None) -> int:
        begin, stop, _ = slice(start, end).indices(len(self))
        return max(0, stop - begin)

    def rfind(self, sub, start=None, end=None):
        CountingText.read += self._span(start, end)
        return super().rfind(sub, start, end)

    def find(self, sub, start=None, end=None):
        CountingText.read += self._span(start, end)
        return super().find(sub, start, end)

    def __getitem__(self, key):
        if isinstance(key, slice):
            CountingText.read += len(range(*key.indices(len(self))))
        return super().__getitem__(key)


def _whole(name):
    def method(self, *args, **kwargs):
        CountingText.read += len(self)
        return getattr(str, name)(self, *args, **kwargs)

    return method


for _name in ("split", "rsplit", "strip", "partition", "rpartition", "splitlines", "__iter__"):
    setattr(CountingText, _name, _whole(_name))
for _name in ("count", "index", "rindex", "__contains__", "replace", "encode", "lower"):
    setattr(CountingText, _name, _whole(_name))


#: Characters of X-Forwarded-For the layer may look at, however long the header: 64 elements
#: of at most 128 characters, each looked at twice (found, then taken).
READ_BOUND = 16 * 1024


class TestBoundedWork:
    """However long the header, the work on it is bounded: counted, never timed."""

    def trusted_hops(self, size: int) -> str:
        hops = []
        total = 0
        index = 0
        while total < size:
            hop = str(ipaddress.IPv4Address(0x0A000000 + index))
            hops.append(hop)
            total += len(hop) + 2
            index += 1
        return ", ".join([CHOSEN, *reversed(hops)])

    @pytest.mark.parametrize(
        ("proxies", "expected"), [(1, "10.0.0.0"), (2, "10.0.0.1"), (["10.0.0.0/8"], None)]
    )
    def test_characters_read_do_not_grow_with_the_header(self, proxies, expected):
        read = {}
        for size in (64 * 1024, 1024 * 1024):
            CountingText.read = 0
            header = CountingText(self.trusted_hops(size))
            ip = get_client_ip({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": header}, proxies)
            assert ip == expected or (expected is None and ip.startswith("10."))
            read[size] = CountingText.read
        assert read[64 * 1024] == read[1024 * 1024] <= READ_BOUND

    def test_hops_parsed_are_bounded_and_the_left_end_is_never_reached(self, monkeypatch):
        parsed = []
        original = client_ip._parse_ip
        monkeypatch.setattr(
            client_ip, "_parse_ip", lambda value: parsed.append(value) or original(value)
        )
        header = self.trusted_hops(1024 * 1024)
        meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": header}
        ip = get_client_ip(meta, ["10.0.0.0/8"])
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/8")  # a trusted hop
        assert 1 <= len(parsed) <= 65
        assert sum(map(len, parsed)) <= READ_BOUND

    @pytest.mark.parametrize("element", ["1" * (1024 * 1024), " " * (1024 * 1024)])
    def test_one_huge_element_is_not_scanned_to_its_end(self, element):
        CountingText.read = 0
        header = CountingText(f"{CHOSEN}, {element}")
        assert get_client_ip({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": header}, 1) == PROXY
        assert CountingText.read <= READ_BOUND


class TestScriptName:
    """Exclusion decides on the path the router matched (PATH_INFO), not on SCRIPT_NAME."""

    def login(self, **extra):
        return Client().post(
            "/api/v1/auth/token/",
            {"username": "nobody", "password": "wrong-password"},
            content_type="application/json",
            **extra,
        )

    @pytest.mark.parametrize("script_name", ["/health", "/health/", "/metrics"])
    def test_a_script_name_cannot_hide_a_login_attempt(self, logs, settings, script_name):
        settings.OBSERVABILITY = {**NOT_SLOW, "EXCLUDE_PATHS": ["/health/", "/metrics"]}
        response = self.login(SCRIPT_NAME=script_name)
        assert response.status_code == 401
        lines = request_lines(logs, response)
        assert any("API Request started" in line for line in lines)
        (completed,) = [line for line in lines if "API Request completed" in line]
        fields = parse_tokens(completed)
        assert fields["status"] == "401" and fields["route"] == "api/v1/auth/token/"

    def test_exclude_patterns_read_the_routed_path_too(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "EXCLUDE_PATTERNS": [r"^/health"]}
        response = self.login(SCRIPT_NAME="/health")
        assert len(request_lines(logs, response)) >= 2

    def test_exclusion_is_relative_to_where_the_app_is_mounted(self, logs):
        response = Client().get("/health/", SCRIPT_NAME="/billing")
        assert response.status_code in (200, 503)
        assert logs.for_request(response["X-Request-ID"]) == []


def card_runs(text: str) -> list[str]:
    """What a card scanner reads: 13-19 digits passing Luhn, joined by any non-letters."""
    found = []
    for match in re.finditer(r"[0-9](?:[^0-9A-Za-z]*[0-9])*", text):
        digits = [int(char) for char in match.group() if char.isdigit()]
        for size in range(13, 20):
            for start in range(len(digits) - size + 1):
                window = digits[start : start + size]
                total = sum(
                    value if index % 2 == 0 else (value * 2 - 9 if value > 4 else value * 2)
                    for index, value in enumerate(reversed(window))
                )
                if total % 10 == 0:
                    found.append("".join(map(str, window)))
    return found


CARD_LIKE = [
    ("2a01:4f8:1:2:4539:1488:3436:4670", 0),  # a client's own /64: it chooses the low bits
    ("203.0.113.1", "4539:1488:3436:4670::"),  # a proxy-appended hop
    ("203.0.113.1", "fe80::4539:1488:3436:467%3"),  # a zone ID's digits joined to the address's
    ("203.0.113.1", "::4539:1488:3436:4670"),
]


class TestCardLikeAddresses:
    def test_the_scanner_of_these_tests_sees_the_cards(self):
        for remote, hop in CARD_LIKE:
            address = remote if hop == 0 else hop
            assert card_runs(str(ipaddress.ip_address(address))), address

    @pytest.mark.parametrize(("remote", "hop"), CARD_LIKE)
    def test_no_card_number_in_the_ip_of_any_line(self, logs, settings, remote, hop):
        proxies = 0 if hop == 0 else 1
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": proxies}
        extra = {} if hop == 0 else {"HTTP_X_FORWARDED_FOR": hop}
        client = Client(REMOTE_ADDR=remote, **extra)
        response = client.get("/t/plain/")
        assert client.get("/metrics").status_code == 404  # a security event with the ip
        lines = request_lines(logs, response) + logs.lines("security")
        assert len(lines) >= 3
        for line in lines:
            ip = parse_tokens(line)["ip"]
            assert ip != "-" and not card_runs(ip), line
            shown = re.search(r"IP: ([^,]*),", line)
            assert shown is None or not card_runs(shown.group(1)), line
        assert "4539:1488:3436" not in logs.everything()

    @pytest.mark.parametrize(
        "address", ["192.168.1.100", "2001:db8::1", "2001:4860:4860::8888", "fe80::1%eth0"]
    )
    def test_ordinary_addresses_stay_as_they_are(self, logs, settings, address):
        settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
        response = Client(REMOTE_ADDR=PROXY).get("/t/plain/", HTTP_X_FORWARDED_FOR=address)
        lines = request_lines(logs, response)
        assert ips(lines) == {address}
        assert all(re.search(f"ip.*{re.escape(address)}", line) for line in lines)

    def test_the_trace_viewer_shows_no_card_in_the_ip(self, logs, settings, staff):
        settings.LOG_BASE_DIR = str(logs.path)  # the viewer reads this test's files
        address = "2a01:4f8:1:2:4539:1488:3436:4670"
        request_id = Client(REMOTE_ADDR=address).get("/t/plain/")["X-Request-ID"]
        logs.lines("requests")  # drained
        viewer = Client()
        viewer.force_login(staff)
        for url in ("/ops/requests/", f"/ops/requests/{request_id}/"):
            response = viewer.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            assert request_id in html and "4539:1488:3436" not in html, url
        detail = viewer.get(f"/ops/requests/{request_id}/").content.decode()
        (shown,) = re.findall(r"<dt>IP</dt><dd>([^<]*)</dd>", detail)
        assert shown.endswith("4670") and not card_runs(shown)

    def test_masking_follows_the_redact_setting(self, logs, settings):
        """A positive control, and the per-address cache follows the settings."""
        address = "4539:1488:3436:4670::"
        first = Client(REMOTE_ADDR=address).get("/t/plain/")
        settings.OBSERVABILITY = {**NOT_SLOW, "REDACT": False}
        second = Client(REMOTE_ADDR=address).get("/t/plain/")
        (masked,) = ips(request_lines(logs, first))
        assert masked != address and not card_runs(masked)
        assert ips(request_lines(logs, second)) == {address}

    def test_the_real_address_still_decides_access_to_the_metrics(self, settings):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "TRUSTED_PROXIES": 1,
            "METRICS_ALLOWED_IPS": ["4539:1488:3436:4670::/64"],
        }
        client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="4539:1488:3436:4670::9")
        assert client.get("/metrics").status_code == 200
