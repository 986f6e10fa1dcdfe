"""The two-worker settings (the worker's PID on each response) with a small VIEWER_RATE."""

from tests.e2e.settings_reuse import *  # noqa: F403 - the two-worker settings
from tests.e2e.settings_reuse import OBSERVABILITY

#: Pages per staff member and day: a day, so one test run rarely crosses a window's end
#: (the test reads the responses' Date headers and allows for it when it does).
VIEWER_PAGES = 8
OBSERVABILITY = {**OBSERVABILITY, "VIEWER_RATE": f"{VIEWER_PAGES}/day"}
