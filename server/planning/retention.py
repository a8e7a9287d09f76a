"""Raw events older than ``EVENT_RETENTION_DAYS`` are deleted, a bounded slice per sweep.

Run by the dispatcher's sweep (``hooks.run_sweeps``): each pass looks at one shop (the next
after a cursor in ``sweep_cursors``, round robin) and deletes at most ``SLICE`` of its events
older than the cutoff, oldest first, through the ``(shop_id, occurred_at)`` index. A shop with
more left keeps the cursor, so the next pass goes on with it; one with none left passes it on.
A pass so costs one index probe when there is nothing to do, and one bounded delete when there
is, whatever the shop's history.

What the dashboard and segments need outlives the rows: the rollups (``server.core.rollups``)
keep their counts when events are deleted, and the visitor summaries keep the last view and
cart times. What still reads raw events (the ``viewed_collection`` condition, a visitor's
timeline) sees only the kept ones.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.core.config import default
from server.core.models import Event, Shop, SweepCursor

log = logging.getLogger(__name__)

SLICE = 5000  # events one pass deletes at most
CURSOR = "event_retention"


def retention_age(config: Any) -> timedelta | None:
    """``EVENT_RETENTION_DAYS`` as an age (0: events are kept forever)."""
    days = config.get("EVENT_RETENTION_DAYS", default("EVENT_RETENTION_DAYS"))
    return timedelta(days=days) if days else None


def age_out_events(session: orm.Session, now: datetime, age: timedelta | None, slice_size: int = SLICE) -> int:
    """Delete up to ``slice_size`` events older than ``age`` of the shop the cursor is at; return
    how many were deleted."""
    if not age:
        return 0
    cutoff = now - age
    after = session.scalar(sa.select(SweepCursor.position).where(SweepCursor.name == CURSOR)) or 0
    shop_id = session.scalar(sa.select(sa.func.min(Shop.id)).where(Shop.id > after))
    if shop_id is None and after > 0:
        shop_id = session.scalar(sa.select(sa.func.min(Shop.id)))  # past the last shop: a new round
    if shop_id is None:
        return 0
    oldest = (sa.select(Event.id).where(Event.shop_id == shop_id, Event.occurred_at < cutoff)
              .order_by(Event.occurred_at).limit(slice_size).scalar_subquery())
    deleted = session.execute(
        sa.delete(Event).where(Event.id.in_(oldest)).execution_options(synchronize_session=False)).rowcount
    # A full slice: more may be left, the next pass stays on this shop.
    _move(session, shop_id - 1 if deleted >= slice_size else shop_id, now)
    if deleted:
        log.info("aged out %d events of shop %s older than %s%s", deleted, shop_id, cutoff.isoformat(),
                 " (more left)" if deleted >= slice_size else "")
    return deleted


def _move(session: orm.Session, position: int, now: datetime) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(SweepCursor).values(name=CURSOR, position=position, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                               set_={"position": position, "updated_at": now}))
