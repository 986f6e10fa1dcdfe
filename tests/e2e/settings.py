"""The project's settings with the end-to-end URLs: the real app plus a slow and a failing view."""

from config.settings import *  # noqa: F403 - the project's settings, unchanged but for the URLs

ROOT_URLCONF = "tests.e2e.urls"
