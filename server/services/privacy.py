"""Privacy: forgetting a visitor, expiring subscriptions nobody has seen, truncating addresses.

``forget_visitor`` deletes what identifies a person and keeps only what the merchant's counts
need, anonymously:

- deleted: the visitor row (identity: email, customer id, first name, referrer, utm, landing
  page, locale), their events and their subscriptions (endpoints and keys);
- kept without the person: their push records (``visitor_id`` and ``subscription_id`` cleared,
  the render context dropped, the target URL blanked, and the title and body blanked when
  they contain the person's name, email or customer id; open ones are cancelled), their
  clicks, checkouts and orders (``visitor_id`` and email cleared), so sent, clicked, ordered
  and GMV figures stay true.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from ..errors import NotFound
from ..models import (
    OPEN_PUSH_STATUSES,
    Checkout,
    Click,
    Event,
    Order,
    Push,
    PushStatus,
    Shop,
    Subscription,
    SubscriptionStatus,
    Visitor,
)

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(days=60)
# How much of an address is kept where one must be kept at all: a /24 or a /48 network.
IPV4_PREFIX = 24
IPV6_PREFIX = 48


def anonymize_ip(value: str) -> str | None:
    """``value`` truncated to its /24 (IPv4) or /48 (IPv6) network address; None if not an address."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@dataclass(frozen=True)
class Forgotten:
    """What ``forget_visitor`` removed or anonymised (counts of rows)."""

    events: int
    subscriptions: int
    pushes_anonymized: int
    pushes_cancelled: int
    clicks: int
    checkouts: int
    orders: int

    def as_json(self) -> dict[str, int]:
        """The counts as a JSON object."""
        return asdict(self)


def _identity_strings(visitor: Visitor) -> list[str]:
    values = (visitor.first_name, visitor.email, visitor.customer_id)
    return [v.strip().lower() for v in values if v and len(v.strip()) >= 2]


def forget_visitor(session: orm.Session, shop: Shop, visitor: Visitor, now: datetime) -> Forgotten:
    """Delete ``visitor``'s personal data and anonymise what the shop's counts need (see module)."""
    if visitor.shop_id != shop.id:
        raise NotFound("unknown visitor", code="unknown_visitor")
    identity = _identity_strings(visitor)
    vid = visitor.id

    cancelled = session.execute(
        sa.update(Push)
        .where(Push.shop_id == shop.id, Push.visitor_id == vid, Push.status.in_(OPEN_PUSH_STATUSES))
        .values(status=PushStatus.CANCELLED.value, error="visitor_forgotten", lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    pushes = session.execute(
        sa.select(Push.id, Push.title, Push.body).where(Push.shop_id == shop.id, Push.visitor_id == vid)
    ).all()
    for push_id, title, body in pushes:
        values: dict[str, object] = {"visitor_id": None, "subscription_id": None, "context": None,
                                     "url": "", "icon": None, "image": None}
        if _mentions(title, identity):
            values["title"] = ""
        if _mentions(body, identity):
            values["body"] = ""
        session.execute(sa.update(Push).where(Push.id == push_id).values(**values)
                        .execution_options(synchronize_session=False))
    clicks = session.execute(
        sa.update(Click).where(Click.shop_id == shop.id, Click.visitor_id == vid)
        .values(visitor_id=None).execution_options(synchronize_session=False)
    ).rowcount
    checkouts = session.execute(
        sa.update(Checkout).where(Checkout.shop_id == shop.id, Checkout.visitor_id == vid)
        .values(visitor_id=None, email=None).execution_options(synchronize_session=False)
    ).rowcount
    orders = session.execute(
        sa.update(Order).where(Order.shop_id == shop.id, Order.visitor_id == vid)
        .values(visitor_id=None, email=None).execution_options(synchronize_session=False)
    ).rowcount
    # Pushes of this visitor's subscriptions that a planner attached to no visitor.
    sub_ids = sa.select(Subscription.id).where(Subscription.shop_id == shop.id,
                                               Subscription.visitor_id == vid)
    session.execute(sa.update(Push).where(Push.subscription_id.in_(sub_ids))
                    .values(subscription_id=None).execution_options(synchronize_session=False))
    events = session.execute(
        sa.delete(Event).where(Event.shop_id == shop.id, Event.visitor_id == vid)
        .execution_options(synchronize_session=False)
    ).rowcount
    subscriptions = session.execute(
        sa.delete(Subscription).where(Subscription.shop_id == shop.id, Subscription.visitor_id == vid)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(sa.delete(Visitor).where(Visitor.id == vid).execution_options(synchronize_session=False))
    session.expunge(visitor)
    result = Forgotten(events=events, subscriptions=subscriptions, pushes_anonymized=len(pushes),
                       pushes_cancelled=cancelled, clicks=clicks, checkouts=checkouts, orders=orders)
    log.info("forgot visitor %s of shop %s: %s", vid, shop.id, result.as_json())
    return result


def _mentions(text: str | None, identity: list[str]) -> bool:
    lowered = (text or "").lower()
    return any(value in lowered for value in identity)


def expire_stale_subscriptions(session: orm.Session, now: datetime,
                               stale_after: timedelta | None = STALE_AFTER, limit: int = 1000) -> int:
    """Expire active subscriptions idle for ``stale_after``; return how many.

    Idle means none of: the browser seen (``last_seen_at``: the widget re-posts it on every page
    load), a push delivered to it (``sent``: the push service accepted it, so it still exists),
    a push of it clicked. A subscription the push service keeps delivering to is never dropped
    for age; one it says is gone (404/410) is expired by the dispatcher at once. ``None`` (or a
    zero age) turns the age rule off. Their open pushes are cancelled. Works in batches of
    ``limit`` so one sweep stays short; the next sweep takes the rest.
    """
    if not stale_after:
        return 0
    cutoff = now - stale_after
    recently_active = sa.exists().where(
        Push.subscription_id == Subscription.id,
        sa.or_(sa.and_(Push.status == PushStatus.SENT.value, Push.sent_at >= cutoff), Push.clicked_at >= cutoff))
    ids = list(session.scalars(
        sa.select(Subscription.id)
        .where(Subscription.status == SubscriptionStatus.ACTIVE.value, Subscription.last_seen_at < cutoff,
               ~recently_active)
        .order_by(Subscription.id).limit(limit)
    ))
    if not ids:
        return 0
    session.execute(
        sa.update(Subscription).where(Subscription.id.in_(ids),
                                      Subscription.status == SubscriptionStatus.ACTIVE.value)
        .values(status=SubscriptionStatus.EXPIRED.value, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(Push).where(Push.subscription_id.in_(ids), Push.status == PushStatus.PENDING.value)
        .values(status=PushStatus.CANCELLED.value, error="subscription_stale")
        .execution_options(synchronize_session=False)
    )
    log.info("expired %d subscriptions idle since %s", len(ids), cutoff.isoformat())
    return len(ids)


def idle_expiry(config: Any) -> timedelta | None:
    """``SUBSCRIPTION_IDLE_DAYS`` as an age (0: subscriptions never expire by age)."""
    days = config.get("SUBSCRIPTION_IDLE_DAYS", STALE_AFTER.days)
    return timedelta(days=days) if days else None
