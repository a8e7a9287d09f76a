"""``browse_abandonment``: the visitor viewed or carted a product, then left; remind 24 h later.

The state lives on the visitor: ``engaged_since`` is set by a product view or add-to-cart and
cleared once a leave has been planned for; ``left_at`` is the time of a ``leave`` event that
was the visitor's last event. A leave is a ``leave`` event, or 30 minutes without events.

Both are planned by ``sweep`` (the dispatcher runs it every pass), not by the ``leave`` event
itself: the widget sends ``leave`` whenever a page is hidden, so on every navigation, and the
next page's event follows within a second. Planning only once a ``leave`` has stood for
``LEAVE_GRACE`` keeps page-to-page navigation from writing and cancelling a reminder per page;
the reminder is still due exactly 24 h after the leave.

Any later event from the visitor cancels the pending reminder and re-arms the engagement, so
the next leave plans it again. After a reminder was actually sent, a leave within 24 h of it
plans nothing (at most one per visitor per 24 h). The cart variant (the latest cart is not
empty) wins over the browse variant (the last product viewed).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import (Event, PresetSetting, Push, PushStatus, Shop, Subscription, SubscriptionStatus,
                                Visitor)
from server.outbox import plan as outbox
from server.planning import defaults, recipients, rendering

log = logging.getLogger(__name__)

KIND = "browse_abandonment"
SILENCE = timedelta(minutes=30)
LEAVE_GRACE = timedelta(seconds=60)
ONCE_PER = timedelta(hours=24)
# ``cart_update``: the widget read a platform's cart (Shopify's /cart.js); it engages like an add-to-cart.
ENGAGING_EVENTS = ("product_view", "add_to_cart", "cart_update")
CART_EVENTS = ("add_to_cart", "remove_from_cart", "checkout_started", "cart_update")
HISTORY = 50  # latest product/cart events read to build the reminder
SWEEP_BATCH = 500


def group_key(visitor_id: int) -> str:
    """The plan name of a visitor's pending reminder."""
    return f"browse:{visitor_id}"


def on_activity(session: orm.Session, visitor: Visitor, event_type: str, now: datetime,
                cancel: bool = True) -> None:
    """A non-leave event: cancel the pending reminder (re-arming it) and note engagement.

    ``cancel=False`` skips the cancelling UPDATE for the later events of one batch.
    """
    cancelled = 0
    if cancel and may_have_pending(visitor):
        # The UPDATE touches pushes only: no need to flush the batch's new events first.
        with session.no_autoflush:
            cancelled = outbox.cancel_group(session, visitor.shop_id, group_key(visitor.id),
                                            reason="visitor_returned")
    if event_type in ENGAGING_EVENTS or cancelled:
        # A fresh engagement gets a fresh window in the dedupe key, so a new leave plans again.
        if visitor.engaged_since is None or cancelled:
            visitor.engaged_since = now
    visitor.left_at = None


def may_have_pending(visitor: Visitor) -> bool:
    """Whether a reminder may be pending for the visitor, read from its state alone.

    Only ``plan_leave`` plans one, and it leaves ``left_at`` set and ``engaged_since`` cleared;
    any later activity clears ``left_at`` (after cancelling). So a visitor with ``left_at``
    unset, or engaged again, has nothing pending, and its events need no cancelling UPDATE.
    """
    return visitor.left_at is not None and visitor.engaged_since is None


def on_leave_event(visitor: Visitor, now: datetime) -> None:
    """A ``leave`` event: note it; ``sweep`` plans from it unless another event follows."""
    visitor.left_at = now


@dataclass
class _Leaving:
    """One visitor of a sweep's batch and what the batch's reads found for it."""

    visitor: Visitor
    shop: Shop
    left_at: datetime
    engaged_since: datetime
    subscriptions: list[Subscription] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def plan_leave(session: orm.Session, shop: Shop, visitor: Visitor, left_at: datetime, now: datetime) -> int:
    """The visitor left at ``left_at``: plan the reminder if they were engaged; return rows planned."""
    return _plan_leaves(session, [(shop, visitor, left_at)], now)


def _plan_leaves(session: orm.Session, leaves: Sequence[tuple[Shop, Visitor, datetime]], now: datetime) -> int:
    """Plan the reminders of a batch of visitors who left; return rows planned.

    Each read is one statement for the whole batch (the cancel of their pending reminders, the
    reminders sent in the last 24 h, the active subscriptions, the latest product and cart
    events), not one per visitor; only the rows themselves are stored one subscription at a time
    (``recipients.plan_rows``: its holdouts, variants, locales and coupons).
    """
    batch: list[_Leaving] = []
    for shop, visitor, left_at in leaves:
        engaged_since = visitor.engaged_since
        visitor.left_at = left_at
        if engaged_since is None:
            continue
        visitor.engaged_since = None
        batch.append(_Leaving(visitor, shop, left_at, engaged_since))
    if not batch:
        return 0
    # Cancelling first makes "a new leave restarts the clock" hold even without an event between.
    _cancel_groups(session, batch)
    settings: dict[int, PresetSetting] = {}
    for leaving in batch:
        if leaving.shop.id not in settings:
            settings[leaving.shop.id] = defaults.get_setting(session, leaving.shop, KIND)
    batch = [leaving for leaving in batch if settings[leaving.shop.id].enabled]
    recent = _sent_since(session, batch)
    kept = []
    for leaving in batch:
        sent = recent.get(leaving.visitor.id, ())
        if any(at is None or at > leaving.left_at - ONCE_PER for at in sent):
            log.info("visitor %s left again within 24 h of a sent reminder: nothing planned", leaving.visitor.id)
        else:
            kept.append(leaving)
    batch = _with_subscriptions(session, kept)
    _read_histories(session, batch)
    planned = 0
    for leaving in batch:
        shop, visitor, setting = leaving.shop, leaving.visitor, settings[leaving.shop.id]
        context, variant = _context_of(shop, visitor, leaving.events)
        if variant is None:
            continue
        rendered = rendering.render(setting, context, fallback_url=context["shop_url"])
        delay = setting.delays[0] if setting.delays else 86400
        window = int(leaving.engaged_since.timestamp() * 1000)
        planned += recipients.plan_rows(
            session, shop=shop, kind=KIND, subscriptions=leaving.subscriptions,
            key=f"browse:{visitor.id}:{window}", group_key=group_key(visitor.id),
            due_at=leaving.left_at + timedelta(seconds=delay), rendered=rendered, now=now,
            topic="browse", context={"variant": variant, "left_at": leaving.left_at.isoformat()},
        )
    return planned


def _cancel_groups(session: orm.Session, batch: list[_Leaving]) -> None:
    """Cancel the pending reminders of every visitor of the batch, in one statement."""
    by_shop: dict[int, list[str]] = {}
    for leaving in batch:
        by_shop.setdefault(leaving.shop.id, []).append(group_key(leaving.visitor.id))
    for shop_id, keys in by_shop.items():
        count = outbox.cancel_groups(session, shop_id, keys, reason="left_again")
        if count:
            log.info("cancelled %d pending reminder(s) of visitors who left again", count)


def _sent_since(session: orm.Session, batch: list[_Leaving]) -> dict[int, list[datetime | None]]:
    """The send times of each visitor's reminders sent (or being sent) in the 24 h before the
    batch's earliest leave."""
    if not batch:
        return {}
    since = min(leaving.left_at for leaving in batch) - ONCE_PER
    found: dict[int, list[datetime | None]] = {}
    for visitor_id, sent_at in session.execute(
        sa.select(Push.visitor_id, Push.sent_at).where(
            Push.visitor_id.in_([leaving.visitor.id for leaving in batch]), Push.kind == KIND,
            Push.status.in_((PushStatus.SENT.value, PushStatus.SENDING.value)),
            sa.or_(Push.sent_at > since, Push.sent_at.is_(None)))
    ).all():
        found.setdefault(visitor_id, []).append(sent_at)
    return found


def _with_subscriptions(session: orm.Session, batch: list[_Leaving]) -> list[_Leaving]:
    """The batch's visitors with active subscriptions, each with them (in id order)."""
    if not batch:
        return []
    by_visitor = {leaving.visitor.id: leaving for leaving in batch}
    for subscription in session.scalars(
        sa.select(Subscription)
        .where(Subscription.visitor_id.in_(list(by_visitor)), Subscription.status == SubscriptionStatus.ACTIVE.value)
        .order_by(Subscription.id)
    ):
        by_visitor[subscription.visitor_id].subscriptions.append(subscription)
    return [leaving for leaving in batch if leaving.subscriptions]


def _read_histories(session: orm.Session, batch: list[_Leaving]) -> None:
    """Each visitor's latest ``HISTORY`` product and cart events, newest first, in one query."""
    if not batch:
        return
    by_visitor = {leaving.visitor.id: leaving for leaving in batch}
    ranked = (sa.select(Event.id, sa.func.row_number().over(
        partition_by=Event.visitor_id, order_by=(Event.occurred_at.desc(), Event.id.desc())).label("n"))
        .where(Event.visitor_id.in_(list(by_visitor)), Event.type.in_(ENGAGING_EVENTS + CART_EVENTS))
        .subquery())
    for event in session.scalars(
        sa.select(Event).join(ranked, ranked.c.id == Event.id).where(ranked.c.n <= HISTORY)
        .order_by(Event.visitor_id, Event.occurred_at.desc(), Event.id.desc())
    ):
        by_visitor[event.visitor_id].events.append(event)


def _context_of(shop: Shop, visitor: Visitor, events: Sequence[Event]) -> tuple[dict[str, Any], str | None]:
    """The template variables and the variant (``cart``, ``browse``, or None: nothing to remind
    of), from the visitor's latest product and cart events (newest first)."""
    product = next((e.product for e in events if e.type in ENGAGING_EVENTS and isinstance(e.product, dict)), None)
    cart = next((e.cart for e in events if isinstance(e.cart, dict)), None)
    context = rendering.base_context(shop, visitor)
    variant: str | None = None
    if cart is not None and _has_items(cart):
        cart_count = rendering.to_decimal(cart.get("item_count"))
        variant = "cart"
        items = [i for i in (cart.get("items") or []) if isinstance(i, dict)]
        product = _carted_product(list(events), items)
        currency = cart.get("currency") or shop.currency
        context.update({
            "cart_total": rendering.format_money(cart.get("total"), currency),
            "item_count": int(cart_count) if cart_count is not None else len(items),
            "cart_url": rendering.safe_url(cart.get("checkout_url")) or "",
            "checkout_url": rendering.safe_url(cart.get("checkout_url")) or "",
        })
    elif product:
        variant = "browse"
    if product:
        context.update({
            "product_title": str(product.get("title") or ""),
            "product_price": rendering.format_money(product.get("price"), product.get("currency") or shop.currency),
            "product_url": rendering.safe_url(product.get("url")) or "",
            "product_image": rendering.safe_url(product.get("image")) or "",
        })
    return context, variant


def _carted_product(events: list[Event], items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The product the cart reminder names: the latest one added to the cart and still in it
    (in the cart's items when they are known, not removed since), else the cart's first item
    with a title; None when the cart names none. Never only the last product viewed: it may
    not be in the cart. ``events`` are newest first."""
    in_cart = {str(i.get("id")) for i in items if i.get("id") is not None}
    removed: set[str] = set()
    for event in events:
        if not isinstance(event.product, dict):
            continue
        product_id = str(event.product.get("id"))
        if event.type == "remove_from_cart":
            removed.add(product_id)
        elif event.type == "add_to_cart" and event.product.get("title") and product_id not in removed:
            if not items or product_id in in_cart:
                return event.product
    return next((i for i in items if i.get("title")), None)


def _has_items(cart: dict[str, Any]) -> bool:
    count = rendering.to_decimal(cart.get("item_count"))
    if count is not None:
        return count > 0
    return bool(cart.get("items")) or (rendering.to_decimal(cart.get("total")) or 0) > 0


def sweep(session: orm.Session, now: datetime, batch: int = SWEEP_BATCH) -> int:
    """Plan the reminders of engaged visitors who left; return rows planned.

    A visitor has left when their last event was a ``leave`` at least ``LEAVE_GRACE`` ago, or
    when they have been silent for 30 minutes. Reads the index ``(engaged_since,
    last_event_at)`` as a range, in batches; every visitor returned has its ``engaged_since``
    cleared, so the next batch starts where this one ended.
    """
    grace_cutoff = now - LEAVE_GRACE
    silence_cutoff = now - SILENCE
    planned = 0
    shops: dict[int, Shop] = {}
    while True:
        query = (
            sa.select(Visitor)
            .where(Visitor.engaged_since.is_not(None), Visitor.engaged_since <= grace_cutoff,
                   Visitor.last_event_at <= grace_cutoff,
                   sa.or_(Visitor.last_event_at <= silence_cutoff,
                          sa.and_(Visitor.left_at.is_not(None), Visitor.left_at >= Visitor.last_event_at)))
            .order_by(Visitor.engaged_since)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        visitors = session.scalars(query).all()
        leaves = []
        for visitor in visitors:
            shop = shops.get(visitor.shop_id) or session.get(Shop, visitor.shop_id)
            shops[visitor.shop_id] = shop
            last = visitor.last_event_at or visitor.engaged_since
            if visitor.left_at is not None and visitor.left_at >= last:
                left_at = visitor.left_at
            else:
                left_at = last + SILENCE
            leaves.append((shop, visitor, left_at))
        planned += _plan_leaves(session, leaves, now)
        session.flush()
        if len(visitors) < batch:
            return planned
