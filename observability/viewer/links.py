"""Admin links for the objects a request's events name (`payment_id=12` -> its admin page).

Never imports a model: the field-to-URL mapping comes from `OBSERVABILITY['VIEWER_ADMIN_LINKS']`
or, by default, from the models registered with the admin site (`<model_name>_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from observability.conf import obs_settings

_PK = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class AdminLink:
    label: str
    url: str


def admin_url_names() -> dict[str, str]:
    """Field name -> admin change URL name, from the setting or the admin site's registry."""
    configured = obs_settings.VIEWER_ADMIN_LINKS
    if configured is not None:
        return dict(configured)
    from django.apps import apps
    from django.contrib import admin

    names: dict[str, str] = {}
    for model in apps.get_models():
        if admin.site.is_registered(model):
            meta = model._meta
            url_name = f"admin:{meta.app_label}_{meta.model_name}_change"
            names.setdefault(f"{meta.model_name}_id", url_name)
    return names


def admin_links(values: dict[str, list[str]]) -> list[AdminLink]:
    """Links to the admin pages of the objects named in `values` (field -> distinct values)."""
    links = []
    for field_name, url_name in sorted(admin_url_names().items()):
        for value in values.get(field_name, ()):
            if not _PK.fullmatch(value):
                continue
            try:
                url = reverse(url_name, args=[value])
            except NoReverseMatch:  # not registered, or no admin: no link
                continue
            label = field_name.removesuffix("_id").replace("_", " ")
            links.append(AdminLink(f"{label} {value}", url))
    return links
