"""Subscriptions nobody has seen, delivered to or clicked for a long time expire (privacy).

Run by the dispatcher's sweep (``hooks.run_sweeps``) on every pass, one slice at a time: each
pass reads the next ``SLICE`` subscriptions in id order after a cursor kept in ``sweep_cursors``
(a primary-key range) and expires the idle ones among them; at the end of the table the cursor
starts again from the beginning. A pass so costs the same at any instance size (it used to read
every idle-looking subscription and probe its pushes, on every pass, even though most of them
stay alive through recent deliveries), and a subscription is looked at once per round: at a
million subscriptions and a pass every few seconds, a round takes minutes, against an idle age
counted in days.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.core.config import default
from server.core.models import Push, PushStatus, Subscription, SubscriptionStatus, SweepCursor

log = logging.getLogger(__name__)


STALE_AFTER = timedelta(days=default("SUBSCRIPTION_IDLE_DAYS"))
SLICE = 5000  # subscriptions a pass looks at
CURSOR = "subscription_expiry"


def expire_stale_subscriptions(session: orm.Session, now: datetime,
                               stale_after: timedelta | None = STALE_AFTER, limit: int = 1000,
                               slice_size: int = SLICE) -> int:
    """Expire the active subscriptions idle for ``stale_after`` in the next slice; return how many.

    Idle means none of: the browser seen (``last_seen_at``: the widget re-posts it on every page
    load), a push delivered to it (``sent``: the push service accepted it, so it still exists),
    a push of it clicked. A subscription the push service keeps delivering to is never dropped
    for age; one it says is gone (404/410) is expired by the dispatcher at once. ``None`` (or a
    zero age) turns the age rule off. Their open pushes are cancelled. Each call reads the next
    ``slice_size`` subscriptions after the stored cursor and expires at most ``limit`` of them,
    so one sweep stays short whatever the instance's size; the next sweep takes the rest.
    """
    if not stale_after:
        return 0
    cutoff = now - stale_after
    start = session.scalar(sa.select(SweepCursor.position).where(SweepCursor.name == CURSOR)) or 0
    end = _slice_end(session, start, slice_size)
    if end is None and start > 0:
        start, end = 0, _slice_end(session, 0, slice_size)  # the end of the table: a new round
    if end is None:
        return 0
    recently_active = sa.exists().where(
        Push.subscription_id == Subscription.id,
        sa.or_(sa.and_(Push.status == PushStatus.SENT.value, Push.sent_at >= cutoff), Push.clicked_at >= cutoff))
    ids = list(session.scalars(
        sa.select(Subscription.id)
        .where(Subscription.id > start, Subscription.id <= end,
               Subscription.status == SubscriptionStatus.ACTIVE.value, Subscription.last_seen_at < cutoff,
               ~recently_active)
        .order_by(Subscription.id).limit(limit)
    ))
    # More than ``limit`` idle in the slice: the next sweep goes on after the last one expired.
    _move(session, ids[-1] if len(ids) == limit else end, now)
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


def _slice_end(session: orm.Session, after: int, size: int) -> int | None:
    """The id of the ``size``-th subscription after ``after`` (or the last one), from the primary key alone."""
    ids = sa.select(Subscription.id).where(Subscription.id > after).order_by(Subscription.id).limit(size).subquery()
    return session.scalar(sa.select(sa.func.max(ids.c.id)))


def _move(session: orm.Session, position: int, now: datetime) -> None:
    """Store the cursor; an upsert, so two workers sweeping at once never collide on its first insert."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(SweepCursor).values(name=CURSOR, position=position, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                               set_={"position": position, "updated_at": now}))


def idle_expiry(config: Any) -> timedelta | None:
    """``SUBSCRIPTION_IDLE_DAYS`` as an age (0: subscriptions never expire by age)."""
    days = config.get("SUBSCRIPTION_IDLE_DAYS", default("SUBSCRIPTION_IDLE_DAYS"))
    return timedelta(days=days) if days else None
