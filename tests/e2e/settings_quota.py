"""The reuse settings with a small seen-IDs table (60 rows): one client sending many IDs
would make the database cache delete a third of it again and again."""

from tests.e2e.settings_reuse import *  # noqa: F403 - the project's settings, the worker header
from tests.e2e.settings_reuse import CACHES

CACHES = {**CACHES, "request_ids": {**CACHES["request_ids"], "OPTIONS": {"MAX_ENTRIES": 60}}}
