"""The Overview's first steps for a new shop, each ticked from real data rather than a flag.

- tag seen: any event arrived from the shop (the script tag is on its pages);
- worker found: the Install page's check passed in this session, or a subscription exists
  (no browser subscribes without the service worker file);
- first subscriber, first push sent, first click: a row of each exists.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import Click, Event, Push, PushStatus, Subscription, SubscriptionStatus


@dataclass(frozen=True)
class Step:
    """One step: its key (for tests and styles), what to do, and whether it is done."""

    key: str
    label: str
    hint: str
    endpoint: str
    done: bool


def _exists(session: orm.Session, query: sa.Select) -> bool:
    return bool(session.scalar(sa.select(query.exists())))


def first_steps(session: orm.Session, shop_id: int, worker_checked: bool) -> list[Step]:
    """The five first steps of ``shop_id`` in order, each with ``done`` from the database."""
    tag = _exists(session, sa.select(Event.id).where(Event.shop_id == shop_id))
    subscriber = _exists(session, sa.select(Subscription.id).where(
        Subscription.shop_id == shop_id, Subscription.status != SubscriptionStatus.TEST.value))
    pushed = _exists(session, sa.select(Push.id).where(Push.shop_id == shop_id,
                                                        Push.status == PushStatus.SENT.value))
    clicked = _exists(session, sa.select(Click.id).where(Click.shop_id == shop_id))
    return [
        Step("tag", "Add the script tag to your shop", "Done when the first visit to your shop is reported.",
             "dashboard.pages.install", tag),
        Step("worker", "Serve the service worker file", "Use the Install page's check, or wait for a first subscriber.",
             "dashboard.pages.install", worker_checked or subscriber),
        Step("subscriber", "Get a first subscriber", "Visit your shop and allow notifications to try it yourself.",
             "dashboard.pages.settings", subscriber),
        Step("push", "Send a first push", "Switch on an event or send a campaign.",
             "dashboard.pages.events", pushed),
        Step("click", "Get a first click", "Click a notification you received.",
             "dashboard.pages.pushes", clicked),
    ]
