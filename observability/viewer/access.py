"""Only staff open the viewer; anyone else is sent to the admin's login, never with a card.

Django's `staff_member_required` sends others to the login page with `?next=` the whole
path and query they asked for, in the `Location` header: a card number a client put in the
query would come back in a response header (THREATS 1). The path is masked first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from observability.masking.redaction import get_redactor

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    """The view for active staff; a redirect to the admin's login (masked `next`) else."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user: Any = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        shown = get_redactor().text(request.get_full_path())
        return redirect_to_login(shown, reverse("admin:login"))

    return wrapped
