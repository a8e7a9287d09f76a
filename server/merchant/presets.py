"""A shop's settings for the five preset pushes: listing them and changing one kind.

The merchant API (``GET /v1/admin/events``, ``PUT /v1/admin/events/{kind}``) calls these.
Templates are checked here, when saved, so a template error never surfaces at send time.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import orm

from server.core.errors import Invalid, NotFound
from server.core.validation import parse
from server.core.models import KINDS, PresetSetting, Shop
from server.planning import content, templates
from server.planning.defaults import get_setting
from server.planning.rendering import safe_url
from server.outbox import plan as outbox

MAX_DELAY = 90 * 24 * 3600  # seconds
MAX_STEPS = {"checkout_recovery": 5}  # every other kind is a single push
TEXT_FIELDS = ("title", "body", "icon", "image", "url")
URL_FIELDS = ("icon", "image", "url")
STEP_KINDS = ("checkout_recovery",)  # the kinds whose steps may have texts of their own


class StepTexts(BaseModel):
    """One checkout recovery step's own texts; empty means the kind's title/body."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)
    body: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)


class ActionButton(BaseModel):
    """One action button: its label and its link (templates); the link must render to http(s)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=templates.MAX_TEMPLATE_CHARS)
    url: str = Field(min_length=1, max_length=templates.MAX_TEMPLATE_CHARS)


class LocaleTexts(BaseModel):
    """A kind's texts in one locale; an empty body or url uses the default one."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=templates.MAX_TEMPLATE_CHARS)
    body: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)
    url: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)


class PresetUpdate(BaseModel):
    """A partial update of one kind's settings (absent fields are left alone)."""

    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    delays: list[StrictInt] | None = Field(default=None, min_length=1, max_length=5)
    title: str | None = Field(default=None, min_length=1, max_length=templates.MAX_TEMPLATE_CHARS)
    body: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    icon: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    image: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    url: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    steps: list[StepTexts] | None = Field(default=None, max_length=5)
    actions: list[ActionButton] | None = Field(default=None, max_length=content.MAX_ACTIONS)
    locales: dict[str, LocaleTexts] | None = Field(default=None, max_length=content.MAX_LOCALES)


def preset_as_json(setting: PresetSetting) -> dict[str, Any]:
    """One kind in the contract's shape (checkout_recovery also gives its ``steps``)."""
    result = {
        "kind": setting.kind,
        "enabled": setting.enabled,
        "delays": list(setting.delays),
        "title": setting.title,
        "body": setting.body,
        "icon": setting.icon,
        "image": setting.image,
        "url": setting.url,
        "actions": [dict(action) for action in setting.actions or []],
        "locales": {tag: dict(texts) for tag, texts in (setting.locales or {}).items()},
    }
    if setting.kind in STEP_KINDS:
        result["steps"] = [dict(step) for step in setting.steps or []]
    return result


def list_presets(session: orm.Session, shop: Shop) -> list[dict[str, Any]]:
    """The five kinds of ``shop``, in the contract's order and shape."""
    return [preset_as_json(get_setting(session, shop, kind)) for kind in KINDS]


def _check_delays(kind: str, delays: list[int]) -> list[int]:
    steps = MAX_STEPS.get(kind, 1)
    if len(delays) > steps:
        raise Invalid(f"delays: {kind} takes {'at most ' if steps > 1 else ''}{steps} "
                      f"delay{'s' if steps > 1 else ''}", code="invalid_field")
    if any(d < 0 or d > MAX_DELAY for d in delays):
        raise Invalid(f"delays: each delay is 0 to {MAX_DELAY} seconds", code="invalid_field")
    if any(b <= a for a, b in zip(delays, delays[1:])):
        raise Invalid("delays: the steps must be in increasing order", code="invalid_field")
    return list(delays)


def is_url_field(field: str) -> bool:
    """Whether ``field`` (a path such as ``url``, ``actions.0.url`` or ``variants.1.image``) holds
    a link: its last segment decides, so a link is checked at any depth."""
    return field.rsplit(".", 1)[-1] in URL_FIELDS


def check_template(field: str, source: str) -> str:
    """Check one template (of a preset, an A/B variant or a campaign) and return it.

    Raises Invalid (``invalid_template``, the message naming ``field``) when it does not parse
    or, for a link field at any depth, when it does not render to an http(s) URL with sample data.
    """
    sample = templates.validate(field, source)
    if is_url_field(field) and source.strip():
        if sample and safe_url(sample) is None:
            raise Invalid(f"{field}: must render to an http(s) URL (got {sample[:80]!r} with sample data)",
                          code="invalid_template")
    return source




def _check_steps(kind: str, steps: list[StepTexts], delays: int) -> list[dict[str, str]]:
    if kind not in STEP_KINDS:
        raise Invalid(f"steps: only {', '.join(STEP_KINDS)} has steps", code="invalid_field")
    if len(steps) > delays:
        raise Invalid(f"steps: at most one per delay ({delays})", code="invalid_field")
    return [{name: check_template(f"steps.{i}.{name}", getattr(step, name)) for name in ("title", "body")}
            for i, step in enumerate(steps)]


def _check_actions(actions: list[ActionButton]) -> list[dict[str, str]]:
    return [{"title": check_template(f"actions.{i}.title", action.title),
             "url": check_template(f"actions.{i}.url", action.url)}
            for i, action in enumerate(actions)]


def _check_locales(locales: dict[str, LocaleTexts]) -> dict[str, dict[str, str]]:
    checked: dict[str, dict[str, str]] = {}
    for raw_tag, texts in locales.items():
        if not content.LOCALE_TAG.match(raw_tag):
            raise Invalid(f"locales: {raw_tag[:40]!r} is not a locale such as de or fr-CA", code="invalid_field")
        tag = content.normalize_locale(raw_tag)
        if tag in checked:
            raise Invalid(f"locales: {tag} is given twice", code="invalid_field")
        checked[tag] = {"title": check_template(f"locales.{tag}.title", texts.title),
                        "body": check_template(f"locales.{tag}.body", texts.body),
                        "url": check_template(f"locales.{tag}.url", texts.url)}
    return checked


def update_preset(session: orm.Session, shop: Shop, kind: str, changes: dict[str, Any],
                  now: datetime) -> dict[str, Any]:
    """Change one kind's settings; return it in the contract's shape.

    Raises NotFound for an unknown kind and Invalid for a bad field or template. Disabling a
    kind cancels its pending pushes; rows already planned keep their texts and due times.
    """
    if kind not in KINDS:
        raise NotFound(f"unknown kind {kind!r}", code="unknown_kind")
    if not isinstance(changes, dict):
        raise Invalid("the body must be a JSON object", code="invalid_field")
    # A client may send back what GET gave it, ``kind`` included: accept it when it matches.
    changes = dict(changes)
    if "kind" in changes and changes.pop("kind") != kind:
        raise Invalid(f"kind: the body names another kind than {kind!r}", code="invalid_field")
    update = parse(PresetUpdate, changes)
    fields = {name for name in update.model_fields_set if getattr(update, name) is not None}
    setting = get_setting(session, shop, kind)
    if "delays" in fields:
        setting.delays = _check_delays(kind, update.delays or [])
    if "steps" in fields:
        setting.steps = _check_steps(kind, update.steps or [], len(setting.delays))
    elif setting.steps and len(setting.steps) > len(setting.delays):
        setting.steps = setting.steps[:len(setting.delays)]  # fewer delays: the extra steps go
    if "actions" in fields:
        setting.actions = _check_actions(update.actions or []) or None
    if "locales" in fields:
        setting.locales = _check_locales(update.locales or {}) or None
    for name in TEXT_FIELDS:
        if name in fields:
            setattr(setting, name, check_template(name, getattr(update, name)))
    if "enabled" in fields:
        was_enabled = setting.enabled
        setting.enabled = bool(update.enabled)
        if was_enabled and not setting.enabled:
            outbox.cancel_kind(session, shop.id, kind, reason="kind_disabled")
    setting.updated_at = now
    session.flush()
    return preset_as_json(setting)
