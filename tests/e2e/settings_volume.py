"""The end-to-end settings with a fast password hasher: a login flood measures the logs, not PBKDF2..."""

from tests.e2e.settings import *  # noqa: F403 - the project's settings, the end-to-end URLs

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# ...nor the login throttles (tests/e2e/test_login_throttle.py proves them): a flood of 2,000
# failed logins from one client must reach the password check, and counting them in the
# shared cache (two writes an attempt) would slow the flood past its flood-control window.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405 - from the project's settings
    "DEFAULT_THROTTLE_RATES": {"login_client": None, "login_username": None},
}
