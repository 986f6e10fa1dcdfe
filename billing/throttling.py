"""Login throttles: bound the password checks a client can make, never lock a user out.

A password check costs ~250 ms of CPU (PBKDF2), so the token endpoint and the admin's
login page count attempts *before* the password is checked, in two budgets that both
surfaces share (one password, one budget: switching surface buys no guesses):

- ``login_client``: attempts per client, an IPv4 address or an IPv6 /64 (one subscriber's
  whole range), as ``TRUSTED_PROXIES`` reads it (a client's own ``X-Forwarded-For`` is
  ignored). It bounds the CPU one client can burn and a spray of usernames.
- ``login_username``: attempts per (username, client). It bounds the guesses at one
  account from one client. It is deliberately *not* per username alone: a global
  per-username limit would let anyone lock any user out by sending wrong passwords for
  their name from anywhere. Here an attacker spends only their own (username, attacker)
  budget, and the user, from their own address, still has theirs. The username is
  compared as the login forms read it (whitespace stripped, NFKC, case-folded), so
  ``" JOHN_DOE"`` buys no new budget.

A successful login resets its (username, client) budget (a typo or two are forgotten)
but not the client's: that one is a CPU budget, and a correct password costs as much to
check as a wrong one (and an attacker's own account must not refill it). An attempt
refused by one throttle spends nothing from the other. Refused attempts never reach the
password hasher.

The counts live in Django's default cache, which every worker process (and host) shares.
Each attempt takes a slot of a ``SlotWindow`` (billing.slot_window), a cache key of its own
taken with ``cache.add()``, so the limit holds in total, not per worker, even for concurrent
requests (a read-modify-write of a counter or of DRF's history list would let racing
requests through). Windows are fixed (whole minutes for a `/min` rate), so a client's burst
across a window's end can reach twice the rate; the average stays at the rate.
``Retry-After`` is the time left in the window.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import cast

from django.core.cache import cache as default_cache
from django.db import DatabaseError
from django.http import HttpRequest
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from billing.login_identity import body_username, client_network, username_key
from billing.slot_window import SlotWindow

logger = logging.getLogger("billing.throttling")

CLIENT_SCOPE = "login_client"
USERNAME_SCOPE = "login_username"
MESSAGES = {
    CLIENT_SCOPE: "Too many login attempts from your address.",
    USERNAME_SCOPE: "Too many login attempts for this username from your address.",
}


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:32]


class LoginThrottle(SimpleRateThrottle):
    """A DRF throttle whose count is a SlotWindow: exact over every worker process.

    DRF's own SimpleRateThrottle reads, edits and writes back a list of timestamps, so
    concurrent requests in different workers overwrite each other's attempts.
    """

    cache = default_cache
    num_requests: int | None  # set by DRF's __init__ from the rate (None: no rate)
    duration: int | None

    def get_rate(self) -> str | None:
        """DRF's, with the rates read per request (DRF's own are bound at import), so
        overridden settings apply."""
        # Rates are "5/min" strings; djangorestframework-stubs types the setting as numbers.
        self.THROTTLE_RATES = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return super().get_rate()

    def __init__(self) -> None:
        super().__init__()
        self.window: SlotWindow | None = None
        self.slot: str | None = None

    def ident(self, request: HttpRequest) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: HttpRequest, view: APIView | None) -> str | None:
        ident = self.ident(request)
        return None if ident is None else f"throttle:{self.scope}:{_digest(ident)}"

    def prepare(
        self, request: HttpRequest, view: APIView | None = None
    ) -> tuple[int, list[str]] | None:
        """Read this request's window; None when it is not throttled, else free()."""
        if self.num_requests is None or self.duration is None:  # no rate for this scope
            return None
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return None
        now = time.time()
        self.window = SlotWindow(self.cache, self.key, self.num_requests, self.duration, now)
        return self.window.free()

    def allow_request(self, request: HttpRequest, view: APIView | None) -> bool:
        found = self.prepare(request, view)
        if found is None:
            return True
        return self.take(*found)

    def take(self, first: int, free: list[str]) -> bool:
        """Claim a slot of the window prepare() read."""
        if self.window is None:
            return True
        self.slot = self.window.claim(first, free)
        return self.slot is not None

    def give_back(self) -> None:
        if self.window is not None and self.slot is not None:
            self.window.release(self.slot)
            self.slot = None

    def wait(self) -> int | None:
        return None if self.window is None else self.window.retry_after(time.time())


class LoginClientThrottle(LoginThrottle):
    """Login attempts per client address (IPv6: per /64)."""

    scope = CLIENT_SCOPE

    def ident(self, request: HttpRequest) -> str | None:
        return client_network(request)


_FROM_BODY = object()


class LoginUsernameThrottle(LoginThrottle):
    """Login attempts per (username, client address): never per username alone."""

    scope = USERNAME_SCOPE

    def __init__(self, username: object = _FROM_BODY) -> None:
        super().__init__()
        self.username = username

    def ident(self, request: HttpRequest) -> str | None:
        username = body_username(request) if self.username is _FROM_BODY else self.username
        name = username_key(username)
        return None if name is None else f"{name}\x00{client_network(request)}"

    def forget(self) -> None:
        """A successful login: this username starts afresh from this client."""
        if self.window is not None:
            self.window.reset()


@dataclass(frozen=True)
class Refusal:
    """A login attempt the throttles refused: which budget, and when to come back."""

    scope: str
    wait: int

    @property
    def message(self) -> str:
        unit = "second" if self.wait == 1 else "seconds"
        return f"{MESSAGES[self.scope]} Try again in {self.wait} {unit}."


class LoginThrottled(exceptions.Throttled):
    """The API's 429 for a refused login (one error shape, Retry-After from `wait`)."""

    default_code = "login_throttled"
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(wait=refusal.wait, detail=MESSAGES[refusal.scope])
        self.refusal = refusal


class ThrottleUnavailable(exceptions.APIException):
    """The cache holding the counts does not answer (Redis down): no password is checked."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "throttle_unavailable"
    default_detail = "Logins are briefly unavailable; retry in a moment."
    wait = 1  # DRF's handler turns it into Retry-After


def claim_all(
    throttles: list[LoginThrottle], request: HttpRequest, view: APIView | None = None
) -> Refusal | None:
    """Take a slot in every throttle, or in none: a refusal spends no other budget.

    First read every window (a full one refuses at once, having written nothing), then
    take the slots; if racing requests filled a window meanwhile, give back the slots
    already taken. A database failure is the database's 503; any other cache failure
    (Redis down) is ThrottleUnavailable, never a password check.
    """
    try:
        found = [(throttle, throttle.prepare(request, view)) for throttle in throttles]
        full = [t for t, free in found if free is not None and not free[1]]
        if not full:
            taken: list[LoginThrottle] = []
            for throttle, free in found:
                if free is None:
                    continue
                if not throttle.take(*free):
                    full = [throttle]
                    for earlier in taken:
                        earlier.give_back()
                    break
                taken.append(throttle)
    except (DatabaseError, exceptions.APIException):
        raise  # the database's own 503, or a bad body's 400
    except Exception as exc:
        logger.exception("Login throttle store failed: %s", type(exc).__name__)
        raise ThrottleUnavailable from exc
    if not full:
        return None
    worst = max(full, key=lambda throttle: throttle.wait() or 0)
    return Refusal(scope=str(worst.scope), wait=worst.wait() or 1)


def login_throttles(username: object) -> list[LoginThrottle]:
    """The throttles of one login attempt outside DRF (the admin's form)."""
    return [LoginClientThrottle(), LoginUsernameThrottle(username)]


def forget_username(throttles: list[LoginThrottle]) -> None:
    """A successful login resets its (username, client) budget, never the client's."""
    for throttle in throttles:
        if isinstance(throttle, LoginUsernameThrottle):
            throttle.forget()
