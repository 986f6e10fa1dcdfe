"""The end-to-end settings with a fast password hasher: a login flood measures the logs, not PBKDF2."""

from tests.e2e.settings import *  # noqa: F403 - the project's settings, the end-to-end URLs

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
