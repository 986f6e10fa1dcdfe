"""The listing's query parameters, named like `logtrace`'s options, validated as a form.

A parameter that holds a control or bidi character (U+202E reorders what a reader sees,
ESC drives a terminal) is refused with a 400 naming it: no filter needs one, and the value
is never reflected raw (the search box shows it escaped).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from observability.logtrace import Filters, parse_when
from observability.masking.escaping import UNSAFE_CHARS, escape

_TRUE = frozenset({"1", "on", "true", "yes"})
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")


def no_unsafe_characters(value: str) -> None:
    """Refuse control and bidi characters (masking.escaping's rule), never echoing them."""
    found = sorted({f"U+{ord(char):04X}" for char in _UNSAFE.findall(value)})
    if found:
        msg = f"must not hold control or bidi characters; it holds {', '.join(found[:5])}"
        raise ValidationError(msg)


class FlagInput(forms.CheckboxInput):
    """`?slow=1` is on, `?slow=0` (or nothing) is off; Django's checkbox reads "0" as on."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> bool:
        return str(data.get(name, "")).lower() in _TRUE


class TextField(forms.CharField):
    """A text parameter: no control or bidi character, even one stripping would drop."""

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            no_unsafe_characters(value)
        return super().clean(value)


class PatternField(forms.RegexField):
    """A parameter of a fixed shape: no control or bidi character either."""

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            no_unsafe_characters(value)
        return super().clean(value)


class RequestSearchForm(forms.Form):
    user = TextField(required=False, max_length=150, help_text="user ID or username")
    ip = TextField(required=False, max_length=64, help_text="client IP")
    path = TextField(required=False, max_length=2048, help_text="path prefix")
    route = TextField(required=False, max_length=512, help_text="URL pattern")
    trace = PatternField(
        required=False, regex=r"^[0-9a-fA-F]{1,64}$", max_length=64, help_text="trace ID"
    )
    since = TextField(required=False, max_length=40, help_text="ISO time (UTC) or 15m, 2h")
    until = TextField(required=False, max_length=40, help_text="ISO time (UTC) or 5m")
    status = PatternField(
        required=False, regex=r"^[1-5](xx|\d\d)$", max_length=3, help_text="5xx or 404"
    )
    slow = forms.BooleanField(required=False, widget=FlagInput(attrs={"value": "1"}))
    errors = forms.BooleanField(  # type: ignore[assignment]  # the ?errors=1 filter
        required=False, widget=FlagInput(attrs={"value": "1"})
    )
    # Where a partial page stopped (its "continue" link); not a search box: a new search
    # starts from the newest requests again.
    before = TextField(required=False, max_length=40, widget=forms.HiddenInput)

    #: Shown as search boxes (the others are flags, or where a partial page stopped).
    BOXES = ("user", "ip", "path", "route", "trace", "since", "until", "status")

    def _clean_when(self, name: str) -> datetime | None:
        value = self.cleaned_data[name].strip()
        if not value:
            return None
        try:
            return parse_when(value)
        except (ValueError, OverflowError):
            msg = f"expected an ISO time (UTC) or an age like 15m, 2h, 1d; got {escape(value)!r}"
            raise forms.ValidationError(msg) from None

    def clean_since(self) -> datetime | None:
        return self._clean_when("since")

    def clean_until(self) -> datetime | None:
        return self._clean_when("until")

    def clean_before(self) -> datetime | None:
        return self._clean_when("before")

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            user=data["user"] or None,
            ip=data["ip"] or None,
            path=data["path"] or None,
            route=data["route"] or None,
            trace=data["trace"] or None,
            since=data["since"],
            until=data["until"],
            status=data["status"] or None,
            slow=data["slow"],
            errors=data["errors"],
        )

    def active_filters(self) -> dict[str, str]:
        """The filters given, as the request named them."""
        return {
            key: str(value)
            for key, value in self.data.items()
            if key in self.fields and value not in ("", None)
        }
