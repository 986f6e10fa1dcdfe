"""What rows are stamped with: the writing request's ID, and random references.

A random reference never reads as a card number (THREATS 1): it is logged and printed.
"""

from __future__ import annotations

import re
import secrets

from django.db import models

# The X-Request-ID of the request that wrote a row: a request that loses a race to this row
# names it in its log event, and `manage.py logtrace <id>` tells the winner's story.
REQUEST_ID_MAX_LENGTH = 128


def request_id_field() -> models.CharField[str, str]:
    return models.CharField(max_length=REQUEST_ID_MAX_LENGTH, blank=True, default="")


# 13 digits in a row is the shortest card number: a value we make and log never holds one.
CARD_LIKE_RUN = re.compile(r"[0-9]{13}")


def random_reference(prefix: str, nbytes: int) -> str:
    """`prefix` and `nbytes` random bytes in hex, never reading as a card number (THREATS 1)."""
    while True:
        token = secrets.token_hex(nbytes)
        if not CARD_LIKE_RUN.search(token):
            return prefix + token
