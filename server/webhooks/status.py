"""The last webhook delivery accepted and the last refused, per shop and source, for the
connection check (``server.merchant.connection``).

An accepted delivery is noted in the request's own transaction. A refused one is noted in a
transaction of its own (the request's is rolled back with the error); refusals come at the
rate of the shop's webhook limit at most, one small row update each.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import exc, orm

from server.core.db import upsert
from server.core.models import WebhookStatus

log = logging.getLogger(__name__)


def _note(session: orm.Session, shop_id: int, source: str, **changes: Any) -> None:
    session.execute(upsert(session, WebhookStatus, ["shop_id", "source"], {"shop_id": shop_id, "source": source},
                           changes))


def note_delivery(session: orm.Session, shop_id: int, source: str, now: datetime) -> None:
    """An accepted delivery from ``source`` (one statement in the request's transaction)."""
    _note(session, shop_id, source, last_delivery_at=now)


def note_failure(session_factory: orm.sessionmaker[orm.Session], shop_id: int, source: str, code: str,
                 message: str, now: datetime) -> None:
    """A refused delivery from ``source``, with the error's code and message (never the body)."""
    session = session_factory()
    try:
        _note(session, shop_id, source, last_failure_at=now, last_failure_code=code[:64], last_failure=message[:300])
        session.commit()
    except exc.SQLAlchemyError:
        session.rollback()
        log.exception("could not note the refused %s delivery of shop %s", source, shop_id)
    finally:
        session.close()
