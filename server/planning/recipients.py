"""Who gets a push and how it is stored: each subscription's own rendering (locale, coupon,
A/B variant), the outbox rows with their TTL and urgency, and the audiences of an order."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.kinds import REGISTRY
from server.core.models import CouponSource, PresetSetting, PushStatus, Shop, Subscription, SubscriptionStatus, Visitor
from server.outbox import plan as outbox
from server.planning import content, coupons, experiments
from server.planning.defaults import get_setting
from server.planning.rendering import Source, base_context, format_money, render, render_variant

log = logging.getLogger(__name__)

# Per kind: how long a push service may hold it (TTL, seconds) and its Urgency (the registry's).
DELIVERY: dict[str, tuple[int, str]] = {name: (kind.ttl, kind.urgency) for name, kind in REGISTRY.items()}


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
