"""Subscriptions nobody has seen, delivered to or clicked for a long time expire (privacy).

Run by the dispatcher's sweep (``hooks.run_sweeps``) on every pass, in batches.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.config import default
from server.core.models import Push, PushStatus, Subscription, SubscriptionStatus

log = logging.getLogger(__name__)


STALE_AFTER = timedelta(days=default("SUBSCRIPTION_IDLE_DAYS"))


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
    days = config.get("SUBSCRIPTION_IDLE_DAYS", default("SUBSCRIPTION_IDLE_DAYS"))
    return timedelta(days=days) if days else None
