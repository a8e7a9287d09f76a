"""What the five planners share: settings lookup, template context, rendering, safe links."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core import fields
from server.core.kinds import REGISTRY
from server.core.models import (CouponSource, PresetSetting, PushStatus, Shop, Subscription, SubscriptionStatus, Visitor)
from server.outbox import plan as outbox
from server.planning import content, coupons, experiments, templates
from server.planning.defaults import DEFAULTS, get_setting  # noqa: F401 (get_setting: the planners' name for it)

log = logging.getLogger(__name__)

# Caps that keep the encrypted payload well under the 3 KB some browsers accept.
MAX_TITLE = 120
MAX_BODY = 400
MAX_URL = 1000

# Per kind: how long a push service may hold it (TTL, seconds) and its Urgency (the registry's).
DELIVERY: dict[str, tuple[int, str]] = {name: (kind.ttl, kind.urgency) for name, kind in REGISTRY.items()}

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


def _subscriber_locale(session: orm.Session, subscription: Subscription) -> str | None:
    if subscription.locale:
        return subscription.locale
    visitor = session.get(Visitor, subscription.visitor_id) if subscription.visitor_id else None
    return visitor.locale if visitor is not None else None


_UNREAD = object()  # ``personalize``'s coupon source not read yet (None means: the shop has none)


def personalize(session: orm.Session, shop: Shop, kind: str, rendered: outbox.Rendered,
                subscription: Subscription, now: datetime, *, coupon_source: Any = _UNREAD,
                test: bool = False) -> tuple[outbox.Rendered, coupons.Coupon]:
    """``rendered`` for one subscription: in its locale, with its own coupon when a template uses one.

    Returns the texts and the coupon taken (a list code is assigned to the subscription here;
    the caller attaches it to the stored push or gives it back, see ``coupons.attach``). A test
    push never takes a list code: it shows ``TEST-COUPON``.
    """
    source = rendered.source
    if not isinstance(source, Source):
        return rendered, coupons.NO_COUPON
    setting = source.setting
    wants_coupon = content.uses_coupon(setting)
    locales = getattr(setting, "locales", None)
    if not locales and not wants_coupon:
        return rendered, coupons.NO_COUPON
    coupon = coupons.NO_COUPON
    if wants_coupon:
        if coupon_source is _UNREAD:
            coupon_source = coupons.get_source(session, shop.id, kind)
        if coupon_source is None:
            pass  # the shop set no coupon for this kind: it renders empty
        elif test and coupon_source.mode == "list":
            coupon = coupons.Coupon(coupons.SAMPLE_LIST_CODE)
        else:
            coupon = coupons.coupon_for(session, shop.id, kind, subscription.id, now, source=coupon_source)
    context = {**source.context, "coupon": coupon.code}
    locale = _subscriber_locale(session, subscription) if locales else None
    return render(setting, context, source.fallback_url, source.texts, locale=locale), coupon


def active_subscriptions(session: orm.Session, visitor_id: int | None) -> list[Subscription]:
    """The visitor's active subscriptions (unsubscribed and expired ones get nothing planned)."""
    if visitor_id is None:
        return []
    return list(session.scalars(
        sa.select(Subscription)
        .where(Subscription.visitor_id == visitor_id,
               Subscription.status == SubscriptionStatus.ACTIVE.value)
        .order_by(Subscription.id)
    ))


def short_hash(value: str, length: int = 12) -> str:
    """A short, url-safe digest (for topics and keys built from long outside strings)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def plan_rows(session: orm.Session, *, shop: Shop, kind: str, subscriptions: Iterable[Subscription],
              key: str, group_key: str, due_at: datetime, rendered: outbox.Rendered, now: datetime,
              step: int = 0, topic: str | None = None, context: dict[str, Any] | None = None) -> int:
    """Plan one row per subscription, keyed ``{key}:{subscription id}``; return how many were new.

    Per subscription: the kind's audience split (``experiments``): one in the kind's holdout
    gets a ``skipped`` row (reason ``holdout``) instead of a pending one, one in a running
    experiment's slice gets its variant's texts; then its own locale and coupon
    (``personalize``). Test pushes are never split.
    """
    ttl, urgency = DELIVERY[kind]
    test = bool((context or {}).get("test"))
    split = None if test else experiments.audience(session, shop.id, kind, now)
    variants: dict[str, outbox.Rendered] = {}
    stored = 0
    source = rendered.source
    # Read once per plan, not per row.
    coupon_source = (coupons.get_source(session, shop.id, kind)
                     if isinstance(source, Source) and content.uses_coupon(source.setting) else _UNREAD)
    for subscription in subscriptions:
        dedupe_key = f"{key}:{subscription.id}"
        if isinstance(coupon_source, CouponSource) and coupon_source.mode == "list" \
                and outbox.exists(session, shop.id, dedupe_key):
            continue  # planned before: taking a code for it would only give it back
        status, error, experiment_id, variant_key, base = PushStatus.PENDING.value, None, None, None, rendered
        if split is not None and split.held_out(subscription.id):
            status, error = PushStatus.SKIPPED.value, experiments.HOLDOUT_REASON
        elif split is not None and (variant := split.variant_for(subscription.id)) is not None:
            experiment_id, variant_key = split.experiment.id, variant["key"]  # type: ignore[union-attr]
            if variant_key not in variants:
                variants[variant_key] = render_variant(rendered, variant)
            base = variants[variant_key]
        if status == PushStatus.SKIPPED.value:
            personal, coupon = base, coupons.NO_COUPON  # a held-out row is never sent: no code for it
        else:
            personal, coupon = personalize(session, shop, kind, base, subscription, now,
                                           coupon_source=coupon_source, test=test)
        push_id = outbox.plan_id(session, outbox.PlannedPush(
            shop_id=shop.id, kind=kind, subscription_id=subscription.id,
            visitor_id=subscription.visitor_id, dedupe_key=dedupe_key,
            group_key=group_key, due_at=due_at, rendered=personal, step=step, topic=topic,
            ttl=ttl, urgency=urgency, context=context or {}, status=status, error=error,
            experiment_id=experiment_id, variant=variant_key,
        ), now)
        coupons.attach(session, coupon, push_id)
        stored += push_id is not None
    return stored


@dataclass(frozen=True)
class OrderAudience:
    """Who a push about an order goes to: the kind's setting, the buyer and their subscriptions."""

    setting: PresetSetting
    visitor: Visitor | None
    subscriptions: list[Subscription]

    def context(self, shop: Shop, order: Any) -> dict[str, Any]:
        """The variables every order push may use."""
        return {
            **base_context(shop, self.visitor),
            "order_id": order.order_ref,
            "order_total": format_money(order.total, order.currency),
        }


def order_audience(session: orm.Session, shop: Shop, kind: str, order: Any) -> OrderAudience | None:
    """The audience of a push about ``order``, or None when nothing is to be planned
    (no order or no known buyer, the kind switched off, no active subscription)."""
    if order is None or order.visitor_id is None:
        return None
    setting = get_setting(session, shop, kind)
    if not setting.enabled:
        return None
    subscriptions = active_subscriptions(session, order.visitor_id)
    if not subscriptions:
        return None
    return OrderAudience(setting, session.get(Visitor, order.visitor_id), subscriptions)
