"""gunicorn settings for `make run`: drain the log queue when a worker exits."""

import os

wsgi_app = "config.wsgi:application"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = None  # the request log is ours: billing_api_requests.log
graceful_timeout = 10
# Only believe X-Forwarded-For/-Proto from these addresses (see README, "Client IP").
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def worker_exit(server, worker):
    from observability.writer import shutdown_writer

    shutdown_writer()
