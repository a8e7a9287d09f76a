"""What a push says: the preset texts rendered with their context, money in words, safe links,
and the caps that keep the encrypted payload well under the 3 KB some browsers accept."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from server.core import fields
from server.core.models import PresetSetting, Shop, Visitor
from server.outbox import plan as outbox
from server.planning import content, templates
from server.planning.defaults import DEFAULTS

log = logging.getLogger(__name__)

# Caps that keep the encrypted payload well under the 3 KB some browsers accept.
MAX_TITLE = 120
MAX_BODY = 400
MAX_URL = 1000

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "CHF": "CHF "}
_NO_DECIMALS = {"JPY", "KRW"}


def to_decimal(value: Any) -> Decimal | None:
    """An exact decimal from a number or numeric string, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def format_money(amount: Any, currency: str | None) -> str:
    """``$49.00``, ``€12.50``, ``¥1200`` or ``49.00 SEK``; empty when the amount is unknown."""
    number = to_decimal(amount)
    if number is None:
        return ""
    code = (currency or "").upper()
    places = Decimal("1") if code in _NO_DECIMALS else Decimal("0.01")
    text = f"{number.quantize(places):,}"
    if code in _SYMBOLS:
        return f"{_SYMBOLS[code]}{text}"
    return f"{text} {code}".strip()


def safe_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL (``fields.http_url``) short enough for a push payload
    (``MAX_URL``: the encrypted payload stays under 3 KB), else None."""
    url = fields.http_url(value)
    return url if url is not None and len(url) <= MAX_URL else None


def shop_url(shop: Shop) -> str:
    """The shop's home page: its first registered origin."""
    origins = list(shop.origins or [])
    return (origins[0] if origins else "https://example.invalid") + "/"


def base_context(shop: Shop, visitor: Visitor | None) -> dict[str, Any]:
    """Variables every template may use."""
    return {
        "shop_name": shop.name,
        "shop_url": shop_url(shop),
        "first_name": (visitor.first_name if visitor else None) or "",
        "currency": shop.currency,
        "coupon": "",  # set per push by ``plan_rows`` when a template uses it
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _render_one(setting: PresetSetting, field: str, source: str, context: dict[str, Any]) -> str:
    try:
        return templates.render(source, context)
    except templates.RENDER_ERRORS as exc:
        # Templates are checked when saved; one failing on odd live data (or past a limit)
        # falls back below. The template's text is not logged: it is the merchant's.
        log.warning("preset template failed at plan time (shop %s, kind %s, field %s): %s",
                    setting.shop_id, setting.kind, field,
                    templates.describe(exc) if isinstance(exc, templates.TemplateLimitError) else type(exc).__name__)
        return ""


@dataclass(frozen=True)
class Source:
    """What ``render`` was given: kept on the result so ``plan_rows`` can render it per subscription."""

    setting: PresetSetting
    context: dict[str, Any]
    fallback_url: str
    texts: dict[str, str] | None


def render(setting: PresetSetting, context: dict[str, Any], fallback_url: str,
           texts: dict[str, str] | None = None, *, locale: str | None = None) -> outbox.Rendered:
    """Render a setting's templates; links that are not http(s) fall back (url) or are dropped.

    ``texts`` (a series step's own ``title``/``body``) replace the setting's where not empty.
    ``locale`` (the subscriber's) picks the setting's per-locale texts when one matches: they
    win over the step texts (those are in the default language), an empty one falls back to
    the setting's. Action buttons whose title is empty or whose link is not http(s) are dropped.
    """
    kind_defaults = DEFAULTS.get(setting.kind, {})
    local = content.localized(getattr(setting, "locales", None), locale)
    step_texts = texts
    texts = local or texts or {}

    def one(field: str, source: str) -> str:
        return _render_one(setting, field, source, context)

    title = (one("locale title" if local else "step title", texts["title"]) if texts.get("title") else "") \
        or one("title", setting.title) or one("default title", kind_defaults.get("title", ""))
    body = (one("locale body" if local else "step body", texts["body"]) if texts.get("body") else "") \
        or one("body", setting.body)
    url = (safe_url(one("locale url", local["url"])) if local.get("url") else None) \
        or safe_url(one("url", setting.url)) or fallback_url
    actions = []
    for index, action in enumerate((getattr(setting, "actions", None) or [])[:content.MAX_ACTIONS], start=1):
        action_title = one(f"actions.{index}.title", action.get("title", ""))
        action_url = safe_url(one(f"actions.{index}.url", action.get("url", "")))
        if action_title and action_url:
            actions.append({"title": _clip(action_title, content.MAX_ACTION_TITLE), "url": action_url})
    return outbox.Rendered(
        title=_clip(title or context.get("shop_name", ""), MAX_TITLE),
        body=_clip(body, MAX_BODY),
        url=url,
        icon=safe_url(one("icon", setting.icon)),
        image=safe_url(one("image", setting.image)),
        actions=tuple(actions),
        source=Source(setting, context, fallback_url, step_texts),
    )


@dataclass(frozen=True)
class _Overlay:
    """A setting's templates with an A/B variant's non-empty fields put over them."""

    shop_id: int
    kind: str
    title: str
    body: str
    url: str
    icon: str
    image: str
    actions: Any
    locales: Any


def render_variant(rendered: outbox.Rendered, variant: dict[str, str]) -> outbox.Rendered:
    """``rendered`` again with a variant's templates (title, body, url, image; empty = the kind's).

    A variant's title or body also replaces a series step's own, so every step carries the
    texts under test. A rendering that does not know its inputs is returned as it is.
    """
    source = rendered.source
    if not isinstance(source, Source):
        return rendered
    setting = source.setting
    overlay = _Overlay(
        shop_id=setting.shop_id, kind=setting.kind,
        **{name: variant.get(name) or getattr(setting, name) or "" for name in ("title", "body", "url", "image")},
        icon=setting.icon or "", actions=getattr(setting, "actions", None), locales=getattr(setting, "locales", None))
    own = dict(source.texts or {})
    for name in ("title", "body"):
        if variant.get(name):
            own.pop(name, None)
    return render(overlay, source.context, source.fallback_url, texts=own)  # type: ignore[arg-type]
