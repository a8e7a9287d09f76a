"""Test support for the preset rules: events as the collect API stores them, and a small send loop.

``deliver_due`` stands in for the dispatcher's bookkeeping (sweeps, the policy gate, marking
rows sent) without any network, so the rules can be driven by the clock alone.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import Event, Push, PushStatus, Shop, Visitor
from server.delivery import policy
from server.planning import hooks

PRODUCT = {"id": "sku-1", "title": "Linen Shirt", "price": "49.00", "currency": "USD",
           "url": "https://shop.example/products/linen-shirt", "image": "https://shop.example/img/shirt.jpg"}
MUG = {"id": "sku-2", "title": "Blue Mug", "price": "12.50", "currency": "USD",
       "url": "https://shop.example/products/blue-mug", "image": "https://shop.example/img/mug.jpg"}


def cart(total: str = "98.00", item_count: int = 2, token: str = "cart-token-1", **extra: Any) -> dict[str, Any]:
    """A widget cart payload."""
    return {"token": token, "total": total, "currency": "USD", "item_count": item_count,
            "checkout_url": f"https://shop.example/checkout/{token}", "items": [MUG], **extra}


def emit(session: orm.Session, shop: Shop, visitor: Visitor, type_: str, now: datetime,
         **fields: Any) -> Event:
    """Store one event the way the collect API does, then call the presets hook."""
    event = Event(shop_id=shop.id, visitor_id=visitor.id, type=type_, occurred_at=now,
                  client_event_id=secrets.token_hex(8), **fields)
    session.add(event)
    visitor.last_event_at = now
    session.flush()
    hooks.on_events(session, visitor, [event], now)
    session.flush()
    return event


def sweep(session: orm.Session, now: datetime) -> int:
    """Run the dispatcher's sweeps at ``now`` (a ``leave`` is planned once it has stood a minute)."""
    planned = hooks.run_sweeps(session, now)
    session.flush()
    return planned


def pushes(session: orm.Session, **filters: Any) -> list[Push]:
    """Push rows matching ``filters`` (column=value), oldest first."""
    query = sa.select(Push).order_by(Push.id)
    for name, value in filters.items():
        query = query.where(getattr(Push, name) == value)
    session.expire_all()
    return list(session.scalars(query))


def due(session: orm.Session, now: datetime) -> list[Push]:
    """Pending rows due at ``now``."""
    session.expire_all()
    return list(session.scalars(
        sa.select(Push).where(Push.status == PushStatus.PENDING.value, Push.due_at <= now).order_by(Push.due_at, Push.id)
    ))


def deliver_due(session: orm.Session, now: datetime) -> list[Push]:
    """One dispatcher pass without a network: sweep, gate each due row, mark it; return those sent."""
    hooks.run_sweeps(session, now)
    session.flush()
    sent = []
    for push in due(session, now):
        push.status = PushStatus.SENDING.value
        session.flush()
        decision = policy.gate(session, push, now)
        if decision.action == "send":
            push.status, push.sent_at, push.http_status = PushStatus.SENT.value, now, 201
            sent.append(push)
        elif decision.action == "skip":
            push.status, push.error = PushStatus.SKIPPED.value, decision.reason
        else:
            push.status, push.due_at = PushStatus.PENDING.value, decision.until
        session.flush()
    return sent
