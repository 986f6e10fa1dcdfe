"""The end-to-end settings plus a response header naming the worker that served the request."""

from tests.e2e.settings import *  # noqa: F403 - the project's settings with the e2e URLs
from tests.e2e.settings import MIDDLEWARE, OBSERVABILITY

MIDDLEWARE = [*MIDDLEWARE, "tests.e2e.worker_pid.WorkerPidMiddleware"]

# The tests here repeat one page until the second worker answers it (up to MAX_TRIES,
# 300, in test_shared_state): on a loaded machine one worker can take more than the
# viewer's 120 pages a minute, and the 429 would end the test before the other worker
# is reached. The throttle has its own tests (tests/observability/test_viewer.py).
OBSERVABILITY = {**OBSERVABILITY, "VIEWER_RATE": "1000/min"}
