"""The push outbox: planning rows idempotently and cancelling the plans a later event makes moot.

A planned row is the rendered notification for one subscription, due at ``due_at``. Its
``dedupe_key`` is unique per shop, so planning the same thing twice (a webhook retried, a sweep
racing a ``leave`` event) stores it once; ``group_key`` names the plan so it can be cancelled
as a whole. Only ``pending`` rows are cancelled: a row being sent is already on its way.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.core.models import Push, PushStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """A notification's texts and links, rendered from the shop's templates at plan time."""

    title: str
    body: str
    url: str
    icon: str | None = None
    image: str | None = None
    # Action buttons, each {"title", "url"}: the url is the target behind its own click link.
    actions: tuple[dict[str, str], ...] = ()
    # What it was rendered from (planning's ``common.Source``), so a plan can render it again
    # per subscription (locale, coupon); not stored.
    source: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PlannedPush:
    """What a planner wants sent to one subscription."""

    shop_id: int
    kind: str
    subscription_id: int
    visitor_id: int | None
    dedupe_key: str
    group_key: str
    due_at: datetime
    rendered: Rendered
    step: int = 0
    topic: str | None = None
    ttl: int = 86400
    urgency: str = "normal"
    context: dict[str, Any] = field(default_factory=dict)
    # A holdout row is stored ``skipped`` (reason ``holdout``): never claimed, never sent.
    status: str = PushStatus.PENDING.value
    error: str | None = None
    # An A/B test's row: the experiment and the variant whose texts it carries.
    experiment_id: int | None = None
    variant: str | None = None


@functools.lru_cache(maxsize=4)
def _plan_one(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (shop_id, dedupe_key) DO NOTHING RETURNING id`` for one row's parameters."""
    if dialect == "postgresql":
        insert = postgresql.insert(Push.__table__)
    elif dialect == "sqlite":
        insert = sqlite.insert(Push.__table__)
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    return (insert.on_conflict_do_nothing(index_elements=["shop_id", "dedupe_key"])
            .returning(Push.__table__.c.id))


def _values(planned: PlannedPush, now: datetime) -> dict[str, Any]:
    return {
        "shop_id": planned.shop_id,
        "kind": planned.kind,
        "dedupe_key": planned.dedupe_key,
        "group_key": planned.group_key,
        "step": planned.step,
        "visitor_id": planned.visitor_id,
        "subscription_id": planned.subscription_id,
        "status": planned.status,
        "error": planned.error,
        "experiment_id": planned.experiment_id,
        "variant": planned.variant,
        "due_at": planned.due_at,
        "attempts": 0,
        "title": planned.rendered.title,
        "body": planned.rendered.body,
        "url": planned.rendered.url,
        "icon": planned.rendered.icon,
        "image": planned.rendered.image,
        "actions": [dict(action) for action in planned.rendered.actions] or None,
        "topic": planned.topic,
        "ttl": planned.ttl,
        "urgency": planned.urgency,
        "context": planned.context or None,  # the same dict, not a copy (``plan_many`` dumps it once)
        "created_at": now,
    }


def plan(session: orm.Session, planned: PlannedPush, now: datetime) -> bool:
    """Store ``planned`` (a pending row, or a held-out ``skipped`` one) unless its dedupe key
    exists; return True if stored."""
    return plan_id(session, planned, now) is not None


def plan_id(session: orm.Session, planned: PlannedPush, now: datetime) -> int | None:
    """Store ``planned`` unless its dedupe key exists; return the new row's id, or None."""
    # The unique (shop_id, dedupe_key) decides, in the database, so concurrent planners agree.
    # The row goes as parameters of one statement built once per dialect (values embedded in the
    # statement made SQLAlchemy build and key a new statement per row: most of a row's cost).
    # RETURNING, not rowcount: drivers report rowcount -1 for some inserts.
    row = session.execute(_plan_one(session.get_bind().dialect.name), _values(planned, now)).first()
    if row is not None:
        log.info("planned %s push %s for subscription %s due %s%s", planned.kind, planned.dedupe_key,
                 planned.subscription_id, planned.due_at.isoformat(),
                 f" ({planned.status}: {planned.error})" if planned.status != PushStatus.PENDING.value else "")
    return None if row is None else int(row[0])


def exists(session: orm.Session, shop_id: int, dedupe_key: str) -> bool:
    """Whether a row with this dedupe key is stored already (any status)."""
    return session.execute(sa.select(Push.id).where(Push.shop_id == shop_id, Push.dedupe_key == dedupe_key)
                           .limit(1)).first() is not None


# PostgreSQL: many rows in one statement, each column that differs between the rows sent as
# one array, each column they share (a campaign's texts, kind, group, times) as one value (a
# short, fixed text per set of differing columns: one round trip and one plan, where a
# multi-row VALUES of hundreds of rows made the driver parse a long query each time, and where
# every text column as an array had the driver quote a thousand strings per column). Columns
# and their types, in the table's order.
_BULK_COLUMNS = (("shop_id", "INTEGER"), ("kind", "VARCHAR"), ("dedupe_key", "VARCHAR"), ("group_key", "VARCHAR"),
                 ("step", "INTEGER"), ("visitor_id", "BIGINT"), ("subscription_id", "BIGINT"),
                 ("status", "VARCHAR"), ("due_at", "TIMESTAMPTZ"), ("attempts", "INTEGER"), ("title", "TEXT"),
                 ("body", "TEXT"), ("url", "TEXT"), ("icon", "TEXT"), ("image", "TEXT"), ("topic", "VARCHAR"),
                 ("ttl", "INTEGER"), ("urgency", "VARCHAR"), ("context", "TEXT"), ("created_at", "TIMESTAMPTZ"))


@functools.lru_cache(maxsize=64)
def _plan_many_pg(varying: tuple[str, ...]) -> sa.TextClause:
    """The bulk insert whose ``varying`` columns come as arrays (unnested) and the rest as one value."""
    def value(name: str, kind: str) -> str:
        source = f"v.{name}" if name in varying else f"CAST(:{name} AS {kind})"
        return f"CAST({source} AS JSONB)" if name == "context" else source

    kinds = dict(_BULK_COLUMNS)
    return sa.text(
        f"INSERT INTO {Push.__tablename__} ({', '.join(name for name, _ in _BULK_COLUMNS)}) "
        f"SELECT {', '.join(value(name, kind) for name, kind in _BULK_COLUMNS)} "
        f"FROM unnest({', '.join(f'CAST(:{name} AS {kinds[name]}[])' for name in varying)}) "
        f"AS v({', '.join(varying)}) "
        "ON CONFLICT (shop_id, dedupe_key) DO NOTHING RETURNING id")


def plan_many(session: orm.Session, planned: list[PlannedPush], now: datetime) -> int:
    """Store many rows at once (those whose dedupe key exists are left out); return how many
    were stored. For bulk planners (campaigns): a few hundred to a few thousand rows per call."""
    if not planned:
        return 0
    rows = [_values(p, now) for p in planned]
    if session.get_bind().dialect.name == "postgresql":
        dumped: dict[int, str] = {}  # a bulk planner shares one context dict between its rows
        for row in rows:
            context = row["context"]
            if context is not None:
                row["context"] = dumped.get(id(context)) or dumped.setdefault(id(context), json.dumps(context))
        first = rows[0]
        # The dedupe key always differs (and gives unnest its row count, even for one row).
        varying = tuple(name for name, _ in _BULK_COLUMNS
                        if name == "dedupe_key" or any(row[name] != first[name] for row in rows))
        params = {name: [row[name] for row in rows] if name in varying else first[name] for name, _ in _BULK_COLUMNS}
        return len(session.execute(_plan_many_pg(varying), params).all())
    # SQLite: one statement with many parameter sets, which SQLAlchemy sends as multi-row
    # INSERTs compiled once (``.values([...])`` would compile hundreds of rows every time).
    stmt = (sqlite.insert(Push.__table__)
            .on_conflict_do_nothing(index_elements=["shop_id", "dedupe_key"])
            .returning(Push.__table__.c.id))
    return len(session.execute(stmt, rows).all())


def plan_from_select(session: orm.Session, columns: list[str], rows: sa.Select[Any]) -> int:
    """Store the rows a query makes, in the database alone (PostgreSQL: no row goes through
    Python); ``columns`` name the table's columns the query's columns fill, in order. Rows whose
    dedupe key exists are left out; returns how many were stored."""
    stmt = (postgresql.insert(Push).from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["shop_id", "dedupe_key"]).returning(Push.id))
    return len(session.execute(stmt).all())


def _cancel(session: orm.Session, reason: str, *conditions: Any) -> int:
    result = session.execute(
        sa.update(Push)
        .where(Push.status == PushStatus.PENDING.value, *conditions)
        .values(status=PushStatus.CANCELLED.value, error=reason)
        # Rows already loaded in this session must not keep showing ``pending``.
        .execution_options(synchronize_session="evaluate")
    )
    return int(result.rowcount or 0)


def cancel_group(session: orm.Session, shop_id: int, group_key: str, reason: str) -> int:
    """Cancel every pending row of the plan ``group_key``; return how many."""
    count = _cancel(session, reason, Push.shop_id == shop_id, Push.group_key == group_key)
    if count:
        log.info("cancelled %d pending push(es) of %s: %s", count, group_key, reason)
    return count


def cancel_groups(session: orm.Session, shop_id: int, group_keys: list[str], reason: str) -> int:
    """Cancel every pending row of the plans ``group_keys`` in one statement; return how many."""
    if not group_keys:
        return 0
    return _cancel(session, reason, Push.shop_id == shop_id, Push.group_key.in_(group_keys))


def cancel_kind(session: orm.Session, shop_id: int, kind: str, reason: str,
                visitor_id: int | None = None) -> int:
    """Cancel the pending rows of one kind in a shop (optionally of one visitor); return how many."""
    conditions = [Push.shop_id == shop_id, Push.kind == kind]
    if visitor_id is not None:
        conditions.append(Push.visitor_id == visitor_id)
    count = _cancel(session, reason, *conditions)
    if count:
        log.info("cancelled %d pending %s push(es) in shop %s: %s", count, kind, shop_id, reason)
    return count


def cancel_subscription(session: orm.Session, subscription_id: int, reason: str) -> int:
    """Cancel every pending row of one subscription (it expired or unsubscribed); return how many."""
    return _cancel(session, reason, Push.subscription_id == subscription_id)
