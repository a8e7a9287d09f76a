"""The soft-ask designer's service: a design from the form, checked, merged into the shop's prompt.

The design is part of the shop's ``prompt`` (``server.merchant.shop_admin.PromptSettings``); the
timing, the dismissal and the per-locale texts stay as Settings set them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from server.collect import softask
from server.core.errors import Invalid
from server.core.models import Shop
from server.merchant.shop_admin import PromptSettings, SettingsUpdate, prompt_as_json, update_settings

DESIGN_FIELDS = ("title", "text", "yes", "no", "color", "position", "icon")
PHONE_FIELDS = ("position", "title", "text")


def design_of(prompt: Mapping[str, Any]) -> dict[str, Any]:
    """The design's fields of a stored prompt (``prompt_as_json``'s)."""
    return {name: prompt[name] for name in (*DESIGN_FIELDS, "phone")}


def design_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The design's fields the form (or the preview's JSON) has, as text; ``phone_*`` in ``phone``."""
    design: dict[str, Any] = {name: str(form.get(name) or "") for name in DESIGN_FIELDS if name in form}
    design["phone"] = {name: str(form.get(f"phone_{name}") or "") for name in PHONE_FIELDS if f"phone_{name}" in form}
    return design


def _merged(prompt: dict[str, Any], design: dict[str, Any]) -> dict[str, Any]:
    """``prompt`` with the fields ``design`` has (the others as stored)."""
    return {**prompt, **design, "phone": {**prompt["phone"], **design.get("phone", {})}}


def _field(loc: tuple[Any, ...]) -> str:
    """``("phone", "text")`` as the form's ``phone_text``."""
    return "_".join(str(part) for part in loc[:2])


def preview(shop: Shop, design: dict[str, Any]) -> dict[str, Any]:
    """``{"html", "css", "errors"}``: the soft-ask as visitors will see it with ``design``; a field
    that would not be saved is named in ``errors`` and previewed as it is stored."""
    current = prompt_as_json(shop.prompt)
    candidate = _merged(current, design)
    errors: dict[str, str] = {}
    try:
        checked = PromptSettings.model_validate(candidate).model_dump()
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            errors[_field(loc)] = error["msg"].removeprefix("Value error, ")
            if len(loc) > 1 and loc[0] == "phone":
                candidate["phone"] = {**candidate["phone"], loc[1]: current["phone"].get(loc[1], "")}
            elif loc:
                candidate[str(loc[0])] = current.get(str(loc[0]), "")
        checked = candidate
    return {**softask.render(checked), "errors": errors}


def save_design(shop: Shop, design: dict[str, Any]) -> None:
    """Store ``design`` in the shop's prompt; raises Invalid (422) naming the first bad field."""
    prompt = _merged(prompt_as_json(shop.prompt), design)
    try:
        update = SettingsUpdate.model_validate({"prompt": prompt})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise Invalid(f"{_field(error['loc'][1:]).replace('_', ' ')}: {error['msg'].removeprefix('Value error, ')}",
                      code="invalid_field") from None
    update_settings(shop, update)
