"""Response header names from the settings: the middleware stores its two headers directly
(observability.http.lifecycle.set_header), so the settings check must refuse every name Django's
own `HttpResponse.__setitem__` would refuse (found by a hostile review: "X-Réquest-ID"
passed str.isalnum and made responses no server could send)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import Client, override_settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.conf_checks import is_header as _is_header
from observability.http.lifecycle import set_header

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

NAMES = ["X-Réquest-ID", "X-Request-ID²", "X-ID\u0663"]


@given(name=st.text(min_size=1, max_size=20))
@hsettings(max_examples=300, deadline=None)
def test_a_name_the_settings_accept_is_one_django_accepts(name):
    if not _is_header(name):
        return
    direct, django = HttpResponse(), HttpResponse()
    django[name] = "req-1"  # raises for a name HTTP cannot carry
    set_header(direct, name, "req-1")
    assert direct.serialize_headers() == django.serialize_headers()


@pytest.mark.parametrize("name", NAMES)
def test_names_http_cannot_carry_are_refused_by_the_settings(name):
    with pytest.raises(UnicodeEncodeError):
        HttpResponse()[name] = "req-1"
    assert not _is_header(name)
    for setting in ("RESPONSE_HEADER", "TRACE_RESPONSE_HEADER", "REQUEST_ID_HEADER"):
        with pytest.raises(ImproperlyConfigured), override_settings(OBSERVABILITY={setting: name}):
            Client().get("/t/plain/")
