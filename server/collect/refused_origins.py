"""Origins the collect API refused: logged and remembered without a flood.

A widget on an origin the shop did not register gets 403 ``forbidden_origin`` on every call
(config, events, subscriptions), and the browser reports it only as a CORS error. Each refusal
is counted in this process; per shop and origin, the first one and then at most one a minute
is logged (with the origin, the shop and how many since the last line) and added to the shop's
``refused_origins`` rows, of which the newest ``MAX_PER_SHOP`` are kept. So a page left open on
a wrong origin costs one line and one small write a minute, not one per request.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import exc, orm

from server.core.errors import ApiError
from server.core.models import RefusedOrigin
from server.core.shops import normalize_origin

log = logging.getLogger(__name__)

REPORT_EVERY = timedelta(minutes=1)
MAX_PER_SHOP = 10
MAX_TRACKED = 10_000  # (shop, origin) pairs counted in memory before the counts start over
EXTENSION = "pushcart.refused_origins"


@dataclass
class _Pending:
    count: int
    reported_at: datetime


class RefusalCounter:
    """Per process: refusals counted since the last report of each (shop, origin)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, str], _Pending] = {}
        self._lock = threading.Lock()

    def count(self, shop_id: int, origin: str, now: datetime) -> int:
        """Count one refusal; return how many to report now (0: not yet, one was reported less
        than ``REPORT_EVERY`` ago)."""
        key = (shop_id, origin)
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                if len(self._pending) >= MAX_TRACKED:
                    self._pending.clear()
                self._pending[key] = _Pending(0, now)
                return 1
            entry.count += 1
            if now - entry.reported_at < REPORT_EVERY:
                return 0
            due, entry.count, entry.reported_at = entry.count, 0, now
            return due


def counter(app: Flask) -> RefusalCounter:
    """The app's ``RefusalCounter``, created on first use."""
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions.setdefault(EXTENSION, RefusalCounter())
    return found


def displayable(origin: str) -> str:
    """The origin as stored and shown: normalized when it is one, else the raw value cut short
    (``null`` from sandboxed frames and ``file://`` pages)."""
    try:
        return normalize_origin(origin)
    except ApiError:
        return origin.strip()[:100] or "(empty)"


def note_refusal(app: Flask, session_factory: orm.sessionmaker[orm.Session], shop_id: int, public_key: str,
                 origin: str, now: datetime) -> None:
    """Count a refused origin; log and store it when a report is due (in its own transaction:
    the refused request's own session is rolled back)."""
    shown = displayable(origin)
    due = counter(app).count(shop_id, shown, now)
    if not due:
        return
    log.warning("collect API refused origin %r for shop %s (%d request(s) since the last report): "
                "not one of the shop's origins", shown, public_key, due)
    session = session_factory()
    try:
        record(session, shop_id, shown, due, now)
        session.commit()
    except exc.SQLAlchemyError:
        session.rollback()
        log.exception("could not store the refused origin for shop %s", public_key)
    finally:
        session.close()


def record(session: orm.Session, shop_id: int, origin: str, count: int, now: datetime) -> None:
    """Add ``count`` refusals of ``origin`` to the shop's rows, keeping the newest ``MAX_PER_SHOP``."""
    row = _find(session, shop_id, origin)
    if row is None:
        try:
            with session.begin_nested():
                session.add(RefusedOrigin(shop_id=shop_id, origin=origin, count=count, first_seen_at=now,
                                          last_seen_at=now))
        except exc.IntegrityError:
            row = _find(session, shop_id, origin)  # another process stored it first
            if row is None:
                raise
    if row is not None:
        row.count += count
        row.last_seen_at = now
    session.flush()
    stale = session.scalars(
        sa.select(RefusedOrigin.id).where(RefusedOrigin.shop_id == shop_id)
        .order_by(RefusedOrigin.last_seen_at.desc(), RefusedOrigin.id.desc()).offset(MAX_PER_SHOP)
    ).all()
    if stale:
        session.execute(sa.delete(RefusedOrigin).where(RefusedOrigin.id.in_(stale)))


def _find(session: orm.Session, shop_id: int, origin: str) -> RefusedOrigin | None:
    return session.scalars(sa.select(RefusedOrigin).where(RefusedOrigin.shop_id == shop_id,
                                                          RefusedOrigin.origin == origin)).one_or_none()
