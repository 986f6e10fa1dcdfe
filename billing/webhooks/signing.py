"""The signature header payment providers use: `t=<timestamp>,v1=<hex HMAC-SHA256>`.

The HMAC is of "<timestamp>.<body>" with the endpoint's secret; during a rotation there is
one `v1=` per secret. A receiver recomputes it with its secret, compares in constant time
and refuses a timestamp outside its tolerance (README, "Background work").
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "Billing-Signature"
TOLERANCE = 300  # seconds a receiver should accept between `t` and its clock


def sign(body: bytes, secrets: Iterable[str], timestamp: int | None = None) -> str:
    """The header's value for `body`, one v1 per non-empty secret."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"]
    for secret in secrets:
        if secret:
            parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


def verify(header: str, body: bytes, secret: str, tolerance: int = TOLERANCE) -> bool:
    """What a receiver does (the README's snippet, tested): True if one v1 matches in time."""
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in items if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    t = int(timestamps[0])
    if abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in items if key == "v1")
