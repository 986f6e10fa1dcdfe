"""The end-to-end settings plus a response header naming the worker that served the request."""

from tests.e2e.settings import *  # noqa: F403 - the project's settings with the e2e URLs
from tests.e2e.settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "tests.e2e.worker_pid.WorkerPidMiddleware"]
