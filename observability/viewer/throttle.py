"""Each staff member may open VIEWER_RATE pages of the trace viewer (a page reads log files).

A page's work is bounded (observability.viewer.views), but a staff session (or a stolen
one) asking for pages in a loop would still keep a core busy. So each staff member's pages
are counted per fixed window in Django's default cache, shared by every worker and host
(observability.shared.slots: exact over concurrent workers). Past the rate a page is a 429 with
Retry-After, before any file is read, and its audit event says so.
"""

from __future__ import annotations

from django.core.cache import caches

from observability.conf import RATE, RATE_SECONDS, obs_settings
from observability.shared.slots import Slots

viewer_slots = Slots("viewer-rate")


def refused(user_pk: object) -> tuple[str, int] | None:
    """(the rate, seconds to wait) when this staff member is past VIEWER_RATE, else None."""
    rate = obs_settings.VIEWER_RATE
    if rate is None:
        return None
    match = RATE.fullmatch(rate)
    if match is None:  # validated at start-up
        return None
    length = RATE_SECONDS[match[2]]
    if viewer_slots.take(caches["default"], f"staff {user_pk}", int(match[1]), length):
        return None
    return rate, Slots.retry_after(length)
