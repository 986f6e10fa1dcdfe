"""A staff-only trace viewer: the `logtrace` engine in the browser, under the admin's login.

Include `observability.viewer.urls` in the project's URLs (this project mounts it at
`/ops/`); `django.contrib.admin`, sessions and messages must be installed.
"""
