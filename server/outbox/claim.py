"""The outbox as a work queue: claim due rows, write outcomes back in bulk.

A claim moves due rows (``pending`` with ``due_at <= now`` and no retry time ahead, or
``sending`` whose lease ran out, i.e. a worker died holding them) to ``sending`` with ``lease_until = now + lease`` and
``attempts + 1``, in one statement. On PostgreSQL the inner select takes
``FOR UPDATE SKIP LOCKED``, so any number of workers share the queue without waiting on each
other or claiming the same row; on SQLite the single UPDATE holds the database's write lock.

Outcomes are written with one statement per batch (PostgreSQL: an UPDATE from arrays;
SQLite: one UPDATE per group of equal `sent` outcomes, one executemany for the rest), guarded by ``status = 'sending' AND attempts = <our claim's
attempts>``: a worker whose lease ran out and whose rows were claimed again by another
cannot overwrite the newer claim's outcome.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import UTCDateTime, in_ids
from server.core.models import Push, PushStatus, Subscription, SubscriptionStatus, Visitor

PENDING, SENDING = PushStatus.PENDING.value, PushStatus.SENDING.value
_table = Push.__table__
Claimed = sa.Row[Any]  # a claimed ``pushes`` row (the ``CLAIMED_COLUMNS``), read-only

# What the send path reads of a claimed row: the policy, the payload, the headers, the outcome.
CLAIMED_COLUMNS = ("id", "shop_id", "kind", "group_key", "step", "subscription_id", "due_at", "attempts",
                   "title", "body", "icon", "image", "topic", "ttl", "urgency", "context", "actions")


def _claim_statement(stale: bool, skip_locked: bool) -> sa.Update:
    """``UPDATE pushes .. WHERE id IN (the oldest due ids) RETURNING ..``, with ``now``,
    ``lease_until`` and ``limit`` bound at execution (built once, compiled once)."""
    c = _table.c
    now = sa.bindparam("now", type_=UTCDateTime)
    if stale:
        due = sa.and_(c.status == SENDING, c.lease_until < now)
    else:
        # On a pending row ``lease_until`` is "retry not before": a retry keeps its ``due_at``
        # (the planned time, from which the TTL counts and which the merchant sees).
        due = sa.and_(c.status == PENDING, c.due_at <= now, sa.or_(c.lease_until.is_(None), c.lease_until <= now))
    pick = sa.select(c.id).where(due).order_by(c.due_at, c.id).limit(sa.bindparam("limit", type_=sa.Integer))
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    picked = pick.cte("picked")
    return (_table.update()
            .where(c.id.in_(sa.select(picked.c.id)))
            .values(status=SENDING, lease_until=sa.bindparam("lease_until", type_=UTCDateTime),
                    attempts=c.attempts + 1)
            .returning(*(c[name] for name in CLAIMED_COLUMNS)))


# (stale, on PostgreSQL) -> statement
_CLAIMS = {(stale, pg): _claim_statement(stale, pg) for stale in (True, False) for pg in (True, False)}


def claim_due(session: orm.Session, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Claim up to ``limit`` due rows for this worker, oldest due first; the caller commits.

    Rows whose lease ran out are taken first, then pending rows. Two plain selects rather
    than one with an OR: each walks the ``(status, due_at, id)`` index in order and stops at
    ``limit``, so a claim costs the same with a backlog of a hundred or of a million rows.
    The claimed rows come back as plain rows of ``CLAIMED_COLUMNS`` (as they are after the
    claim), not ORM objects: nothing on the send path changes them in place.
    """
    pg = session.get_bind().dialect.name == "postgresql"
    params = {"now": now, "lease_until": now + lease, "limit": limit}
    rows = list(session.execute(_CLAIMS[True, pg], params).all())
    if len(rows) < limit:
        params["limit"] = limit - len(rows)
        rows += session.execute(_CLAIMS[False, pg], params).all()
    rows.sort(key=lambda p: (p.due_at, p.id))
    return rows


def load_subscriptions(session: orm.Session, pushes: Sequence[Any]) -> dict[int, sa.Row[Any]]:
    """The subscriptions of ``pushes`` in one query: where and how to send (``endpoint``,
    ``p256dh``, ``auth``, ``vapid_key_id``), whether a push service storm holds it
    (``suspect_since``) and what the send-time policy reads (``subscription_facts``)."""
    ids = {p.subscription_id for p in pushes if p.subscription_id is not None}
    return subscription_facts(session, ids, Subscription.endpoint, Subscription.p256dh, Subscription.auth,
                              Subscription.vapid_key_id, Subscription.suspect_since)


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


# SQLite, the rows that were sent (nearly all of a batch): one statement per group of equal
# outcomes, ``id IN (..)``. A sent row keeps the ``due_at`` it was claimed with (the
# dispatcher writes it back unchanged), so the statement does not touch it.
_RECORD_SENT = (
    _table.update()
    .where(_table.c.id.in_(sa.bindparam("ids", expanding=True)), _table.c.status == SENDING,
           _table.c.attempts == sa.bindparam("claimed"))
    .values(status=PushStatus.SENT.value, attempts=sa.bindparam("attempts"),
            http_status=sa.bindparam("http_status", type_=sa.Integer), error=None,
            sent_at=sa.bindparam("sent_at", type_=UTCDateTime), lease_until=None)
)


# PostgreSQL: the whole batch in one statement, its columns sent as arrays (one round trip,
# one plan, instead of an UPDATE per row).
_RECORD_PG = sa.text(f"""
UPDATE {_table.name} SET status = v.status, attempts = v.attempts, due_at = v.due_at,
       http_status = v.http_status, error = v.error, sent_at = v.sent_at, lease_until = v.retry_at
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:claimed AS INTEGER[]), CAST(:statuses AS VARCHAR[]),
            CAST(:attempts AS INTEGER[]), CAST(:due_ats AS TIMESTAMPTZ[]), CAST(:http_statuses AS INTEGER[]),
            CAST(:errors AS TEXT[]), CAST(:sent_ats AS TIMESTAMPTZ[]), CAST(:retry_ats AS TIMESTAMPTZ[]))
     AS v(id, claimed, status, attempts, due_at, http_status, error, sent_at, retry_at)
WHERE {_table.name}.id = v.id AND {_table.name}.status = '{SENDING}' AND {_table.name}.attempts = v.claimed
""")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime in an outcome")
    return value


def record_outcomes(session: orm.Session, outcomes: Sequence[Outcome]) -> None:
    """Write every outcome of a batch in one statement (PostgreSQL), or (SQLite) one
    ``UPDATE .. WHERE id IN (..)`` per group of equal ``sent`` outcomes and one executemany
    for the rest; the caller commits."""
    if not outcomes:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_RECORD_PG, {
            "ids": [o.push_id for o in outcomes], "claimed": [o.claimed_attempts for o in outcomes],
            "statuses": [o.status for o in outcomes], "attempts": [o.attempts for o in outcomes],
            "due_ats": [_aware(o.due_at) for o in outcomes], "http_statuses": [o.http_status for o in outcomes],
            "errors": [o.error for o in outcomes], "sent_ats": [_aware(o.sent_at) for o in outcomes],
            "retry_ats": [_aware(o.retry_at) for o in outcomes]})
        return
    sent: dict[tuple[int, int, int | None, datetime | None], list[int]] = {}
    rest = []
    for o in outcomes:
        if o.status == PushStatus.SENT.value and o.error is None and o.retry_at is None:
            sent.setdefault((o.claimed_attempts, o.attempts, o.http_status, o.sent_at), []).append(o.push_id)
        else:
            rest.append(o)
    for (claimed, attempts, http_status, sent_at), ids in sent.items():
        session.execute(_RECORD_SENT, {"ids": ids, "claimed": claimed, "attempts": attempts,
                                       "http_status": http_status, "sent_at": _aware(sent_at)})
    if rest:
        session.execute(_RECORD, [
            {"b_id": o.push_id, "b_claimed": o.claimed_attempts, "b_status": o.status, "b_attempts": o.attempts,
             "b_due_at": o.due_at, "b_http_status": o.http_status, "b_error": o.error, "b_sent_at": o.sent_at,
             "b_retry_at": o.retry_at}
            for o in rest
        ])


def extend_lease(session: orm.Session, claims: Iterable[tuple[int, int]], until: datetime) -> int:
    """Keep claimed rows until ``until``: ``claims`` are ``(push_id, claimed_attempts)`` pairs,
    guarded like outcomes (a row another worker claimed since is left alone). Returns how many
    rows were extended; the caller commits."""
    groups: dict[int, list[int]] = {}
    for push_id, claimed in claims:
        groups.setdefault(claimed, []).append(push_id)
    extended = 0
    for claimed, ids in groups.items():
        result = session.execute(
            sa.update(Push)
            .where(in_ids(Push.id, ids, session), Push.status == SENDING, Push.attempts == claimed)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        extended += int(result.rowcount or 0)
    return extended


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
        .values(status=SubscriptionStatus.EXPIRED.value, ended_at=now, suspect_since=None, suspect_host=None)
        .execution_options(synchronize_session=False)
    )
    # A test device's subscription ends too, keeping its status (so no figure ever counts it): the
    # dashboard lists it as no longer reachable, and no test push goes to it.
    session.execute(
        sa.update(Subscription)
        .where(Subscription.id.in_(ids), Subscription.status == SubscriptionStatus.TEST.value,
               Subscription.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        sa.update(Push)
        .where(Push.subscription_id.in_(ids), Push.status == PENDING)
        .values(status=PushStatus.CANCELLED.value, error="subscription expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def subscription_facts(session: orm.Session, ids: set[int], *columns: Any) -> dict[int, Any]:
    """What the policy reads of each subscription (``status``, ``ended_at``, ``timezone`` and its visitor's as
    ``visitor_timezone``), plus any other ``columns`` the caller wants, in one query."""
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Subscription.id, Subscription.status, Subscription.ended_at, Subscription.timezone,
                  Visitor.timezone.label("visitor_timezone"), *columns)
        .outerjoin(Visitor, Visitor.id == Subscription.visitor_id)
        .where(in_ids(Subscription.id, ids, session))
    )
    return {row.id: row for row in rows}
