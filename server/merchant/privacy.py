"""Privacy: forgetting a visitor, expiring subscriptions nobody has seen, truncating addresses.

``forget_visitor`` deletes what identifies a person and keeps only what the merchant's counts
need, anonymously:

- deleted: the visitor row (identity: email, customer id, first name, referrer, utm, landing
  page, locale), their events, their subscriptions (endpoints and keys) and their tags;
- kept without the person: their push records (``visitor_id`` and ``subscription_id`` cleared,
  the render context dropped, the target URL blanked, and the title and body blanked when
  they contain the person's name, email or customer id; open ones are cancelled), their
  clicks, checkouts and orders (``visitor_id`` and email cleared) and their on-site message
  showings (``visitor_id`` cleared), so sent, clicked, shown, ordered and GMV figures stay true.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.errors import NotFound
from server.core.models import (OPEN_PUSH_STATUSES, Checkout, Click, Event, OnsiteImpression, Order, Push, PushStatus,
                                Shop, Subscription, Visitor, VisitorTag)

log = logging.getLogger(__name__)


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
    session.execute(sa.update(OnsiteImpression).where(OnsiteImpression.shop_id == shop.id,
                                                      OnsiteImpression.visitor_id == vid)
                    .values(visitor_id=None).execution_options(synchronize_session=False))
    session.execute(sa.delete(VisitorTag).where(VisitorTag.shop_id == shop.id, VisitorTag.visitor_id == vid)
                    .execution_options(synchronize_session=False))
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


