"""The outbox as a work queue: claim due rows, write outcomes back in bulk.

A claim moves due rows (``pending`` with ``due_at <= now`` and no retry time ahead, or
``sending`` whose lease ran out, i.e. a worker died holding them) to ``sending`` with ``lease_until = now + lease`` and
``attempts + 1``, in one statement. On PostgreSQL the inner select takes
``FOR UPDATE SKIP LOCKED``, so any number of workers share the queue without waiting on each
other or claiming the same row; on SQLite the single UPDATE holds the database's write lock.

Outcomes are written with one executemany per batch, guarded by ``status = 'sending' AND
attempts = <our claim's attempts>``: a worker whose lease ran out and whose rows were claimed
again by another cannot overwrite the newer claim's outcome.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import orm

from ..db import UTCDateTime
from ..models import Push, PushStatus, Shop, Subscription, SubscriptionStatus, Visitor

PENDING, SENDING = PushStatus.PENDING.value, PushStatus.SENDING.value


def claim_due(session: orm.Session, now: datetime, limit: int, lease: timedelta) -> list[Push]:
    """Claim up to ``limit`` due rows for this worker, oldest due first; the caller commits.

    Rows whose lease ran out are taken first, then pending rows. Two plain selects rather
    than one with an OR: each walks the ``(status, due_at)`` index in order and stops at
    ``limit``, so a claim costs the same with a backlog of a hundred or of a million rows.
    """
    stale = (sa.select(Push.id).where(Push.status == SENDING, Push.lease_until < now)
             .order_by(Push.due_at, Push.id).limit(limit))
    rows = _claim(session, stale, now, lease)
    if len(rows) < limit:
        # On a pending row ``lease_until`` is "retry not before": a retry keeps its ``due_at``
        # (the planned time, from which the TTL counts and which the merchant sees).
        pending = (sa.select(Push.id)
                   .where(Push.status == PENDING, Push.due_at <= now,
                          sa.or_(Push.lease_until.is_(None), Push.lease_until <= now))
                   .order_by(Push.due_at, Push.id).limit(limit - len(rows)))
        rows += _claim(session, pending, now, lease)
    rows.sort(key=lambda p: (p.due_at, p.id))
    return rows


def _claim(session: orm.Session, pick: sa.Select[tuple[int]], now: datetime, lease: timedelta) -> list[Push]:
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    picked = pick.cte("picked")
    stmt = (
        sa.update(Push)
        .where(Push.id.in_(sa.select(picked.c.id)))
        .values(status=SENDING, lease_until=now + lease, attempts=Push.attempts + 1)
        .returning(Push)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt))


def load_subscriptions(session: orm.Session, pushes: Sequence[Push]) -> dict[int, Subscription]:
    """The subscriptions of ``pushes`` in one query, their visitors and shops in one more each.

    They land in the session's identity map, so the send-time policy's ``session.get`` calls
    for a batch cost no query.
    """
    ids = {p.subscription_id for p in pushes if p.subscription_id is not None}
    if not ids:
        return {}
    subscriptions = {s.id: s for s in session.scalars(sa.select(Subscription).where(Subscription.id.in_(ids)))}
    visitor_ids = {s.visitor_id for s in subscriptions.values()}
    list(session.scalars(sa.select(Visitor).where(Visitor.id.in_(visitor_ids))))
    list(session.scalars(sa.select(Shop).where(Shop.id.in_({p.shop_id for p in pushes}))))
    return subscriptions


@dataclass(slots=True)
class Outcome:
    """What to write on one claimed row. ``claimed_attempts`` guards against a lost lease;
    ``retry_at`` (pending rows only) is when it may be claimed again."""

    push_id: int
    claimed_attempts: int
    status: str
    attempts: int
    due_at: datetime
    http_status: int | None = None
    error: str | None = None
    sent_at: datetime | None = None
    retry_at: datetime | None = None


_table = Push.__table__
_RECORD = (
    _table.update()
    .where(_table.c.id == sa.bindparam("b_id"), _table.c.status == SENDING,
           _table.c.attempts == sa.bindparam("b_claimed"))
    .values(status=sa.bindparam("b_status"), attempts=sa.bindparam("b_attempts"),
            due_at=sa.bindparam("b_due_at", type_=UTCDateTime),
            http_status=sa.bindparam("b_http_status", type_=sa.Integer),
            error=sa.bindparam("b_error", type_=sa.Text),
            sent_at=sa.bindparam("b_sent_at", type_=UTCDateTime),
            lease_until=sa.bindparam("b_retry_at", type_=UTCDateTime))
)


def record_outcomes(session: orm.Session, outcomes: Sequence[Outcome]) -> None:
    """Write every outcome of a batch in one executemany; the caller commits."""
    if not outcomes:
        return
    session.execute(_RECORD, [
        {"b_id": o.push_id, "b_claimed": o.claimed_attempts, "b_status": o.status, "b_attempts": o.attempts,
         "b_due_at": o.due_at, "b_http_status": o.http_status, "b_error": o.error, "b_sent_at": o.sent_at,
         "b_retry_at": o.retry_at}
        for o in outcomes
    ])


def expire_subscriptions(session: orm.Session, subscription_ids: Iterable[int], now: datetime) -> int:
    """Mark subscriptions expired (the push service said 404/410) and cancel their pending rows.

    Returns how many pending rows were cancelled. The caller commits.
    """
    ids = sorted(set(subscription_ids))
    if not ids:
        return 0
    session.execute(
        sa.update(Subscription)
        .where(Subscription.id.in_(ids), Subscription.status == SubscriptionStatus.ACTIVE.value)
        .values(status=SubscriptionStatus.EXPIRED.value, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        sa.update(Push)
        .where(Push.subscription_id.in_(ids), Push.status == PENDING)
        .values(status=PushStatus.CANCELLED.value, error="subscription expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
