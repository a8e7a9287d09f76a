"""The last webhook delivery accepted and the last refused, per shop and source, for the
connection check (``server.merchant.connection``).

An accepted delivery is noted in the request's own transaction. A refused one is noted in a
transaction of its own (the request's is rolled back with the error); refusals come at the
rate of the shop's webhook limit at most, one small row update each.
"""
from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc, orm

from server.core.models import WebhookStatus

log = logging.getLogger(__name__)

SOURCES = ("native", "shopify", "woocommerce")


def _row(session: orm.Session, shop_id: int, source: str) -> WebhookStatus:
    query = sa.select(WebhookStatus).where(WebhookStatus.shop_id == shop_id, WebhookStatus.source == source)
    row = session.scalars(query).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = WebhookStatus(shop_id=shop_id, source=source)
            session.add(row)
        return row
    except exc.IntegrityError:
        return session.scalars(query).one()  # another request made it first


def note_delivery(session: orm.Session, shop_id: int, source: str, now: datetime) -> None:
    """An accepted delivery from ``source``."""
    _row(session, shop_id, source).last_delivery_at = now


def note_failure(session_factory: orm.sessionmaker[orm.Session], shop_id: int, source: str, code: str,
                 message: str, now: datetime) -> None:
    """A refused delivery from ``source``, with the error's code and message (never the body)."""
    session = session_factory()
    try:
        row = _row(session, shop_id, source)
        row.last_failure_at, row.last_failure_code, row.last_failure = now, code[:64], message[:300]
        session.commit()
    except exc.SQLAlchemyError:
        session.rollback()
        log.exception("could not note the refused %s delivery of shop %s", source, shop_id)
    finally:
        session.close()
