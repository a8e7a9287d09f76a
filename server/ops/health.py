"""What ``/healthz`` and ``/metrics`` read from the database: reachability, backlog, push counts."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from server.core.models import Push, PushStatus, Subscription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backlog:
    """Open outbox work at ``now``."""

    due: int  # pending rows whose due time has come
    scheduled: int  # pending rows due later
    sending: int  # rows claimed by a worker
    oldest_due_age_seconds: float | None  # how long the oldest due row has waited


def database_reachable(session: orm.Session) -> bool:
    """Whether a trivial query succeeds (the pool pre-pings, so a restarted server is fine)."""
    try:
        session.execute(sa.text("SELECT 1")).scalar_one()
        return True
    except sa_exc.SQLAlchemyError as exc:
        log.warning("database unreachable: %s", type(exc).__name__)
        session.rollback()
        return False


def outbox_backlog(session: orm.Session, now: datetime) -> Backlog:
    """Count the open outbox rows and the age of the oldest due one (an index range scan)."""
    pending = PushStatus.PENDING.value
    due, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(Push.due_at))
        .where(Push.status == pending, Push.due_at <= now)
    ).one()
    scheduled = session.scalar(
        sa.select(sa.func.count()).where(Push.status == pending, Push.due_at > now)) or 0
    sending = session.scalar(
        sa.select(sa.func.count()).where(Push.status == PushStatus.SENDING.value)) or 0
    if oldest is not None and oldest.tzinfo is None:  # min() bypasses the column type on SQLite
        oldest = _as_utc(oldest)
    elif isinstance(oldest, str):
        oldest = _as_utc(datetime.fromisoformat(oldest))
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    return Backlog(due=int(due or 0), scheduled=int(scheduled), sending=int(sending),
                   oldest_due_age_seconds=age)


def _as_utc(value: datetime) -> datetime:
    from datetime import timezone

    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def push_counts(session: orm.Session) -> list[tuple[str, str, int]]:
    """``(kind, status, count)`` over every push row (all shops)."""
    rows = session.execute(
        sa.select(Push.kind, Push.status, sa.func.count()).group_by(Push.kind, Push.status)
    ).all()
    return [(kind, status, int(count)) for kind, status, count in rows]


def subscription_counts(session: orm.Session) -> list[tuple[str, int]]:
    """``(status, count)`` over every subscription (all shops)."""
    rows = session.execute(
        sa.select(Subscription.status, sa.func.count()).group_by(Subscription.status)
    ).all()
    return [(status, int(count)) for status, count in rows]
