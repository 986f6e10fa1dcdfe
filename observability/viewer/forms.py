"""The listing's query parameters, named like `logtrace`'s options, validated as a form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from observability.logtrace import Filters, parse_when

_TRUE = frozenset({"1", "on", "true", "yes"})


class FlagInput(forms.CheckboxInput):
    """`?slow=1` is on, `?slow=0` (or nothing) is off; Django's checkbox reads "0" as on."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> bool:
        return str(data.get(name, "")).lower() in _TRUE


class RequestSearchForm(forms.Form):
    user = forms.CharField(required=False, max_length=150, help_text="user ID or username")
    ip = forms.CharField(required=False, max_length=64, help_text="client IP")
    path = forms.CharField(required=False, max_length=2048, help_text="path prefix")
    route = forms.CharField(required=False, max_length=512, help_text="URL pattern")
    trace = forms.RegexField(
        required=False, regex=r"^[0-9a-fA-F]{1,64}$", max_length=64, help_text="trace ID"
    )
    since = forms.CharField(required=False, max_length=40, help_text="ISO time (UTC) or 15m, 2h")
    until = forms.CharField(required=False, max_length=40, help_text="ISO time (UTC) or 5m")
    status = forms.RegexField(
        required=False, regex=r"^[1-5](xx|\d\d)$", max_length=3, help_text="5xx or 404"
    )
    slow = forms.BooleanField(required=False, widget=FlagInput(attrs={"value": "1"}))
    errors = forms.BooleanField(  # type: ignore[assignment]  # the ?errors=1 filter
        required=False, widget=FlagInput(attrs={"value": "1"})
    )

    def _clean_when(self, name: str) -> datetime | None:
        value = self.cleaned_data[name].strip()
        if not value:
            return None
        try:
            return parse_when(value)
        except (ValueError, OverflowError):
            msg = f"expected an ISO time (UTC) or an age like 15m, 2h, 1d; got {value!r}"
            raise forms.ValidationError(msg) from None

    def clean_since(self) -> datetime | None:
        return self._clean_when("since")

    def clean_until(self) -> datetime | None:
        return self._clean_when("until")

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
        """The filters given, as the request named them (for the audit event)."""
        return {
            key: str(value)
            for key, value in self.data.items()
            if key in self.fields and value not in ("", None)
        }
