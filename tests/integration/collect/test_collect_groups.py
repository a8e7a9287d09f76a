"""Event batches stored in groups (the journal's drain): several requests in one transaction,
on SQLite and PostgreSQL.

What one request does is covered by test_collect_api.py; here, what changes when requests
share a write: visitors created once, an event id stored once across requests, each request's
own count, concurrent drainers (two processes' worth) agreeing through the database.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from server.core.db import get_db
from server.core.models import Event, Push, Visitor
from server.planning import browse_abandonment
from server.core.shops import shop_cache
from server.collect.events import EventBatch, StoredBatch, store_batches
from tests.factories import make_push, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in

ORIGIN = "https://shop.example"


def batch(visitor_id, *events):
    return EventBatch.model_validate({"visitor_id": visitor_id, "events": list(events)})


def journaled(shop_id, validated, received_at):
    """The batch as the events journal keeps it and hands it back to ``store_batches``."""
    return StoredBatch.from_json(shop_id, received_at, validated.model_dump_json(exclude_none=True))


def count(session, model, *where):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_one_write_for_several_requests_creates_each_visitor_once_and_counts_per_request(app, session, new_shop, clock):
    sid = new_shop.shop.id
    product = {"id": "sku-1", "title": "Mug", "price": "12.50", "currency": "USD"}
    items = [
        journaled(sid, batch("visitor_aaaa", {"type": "page_view", "id": "a1",
                                              "url": f"{ORIGIN}/?utm_source=news"}), clock.now()),
        journaled(sid, batch("visitor_bbbb", {"type": "product_view", "id": "b1", "product": product}), clock.now()),
        # The same visitor again, with a repeated id (a retried beacon) and a new one.
        journaled(sid, batch("visitor_aaaa", {"type": "page_view", "id": "a1"},
                             {"type": "add_to_cart", "id": "a2"},
                             {"type": "identify", "email": "Ann@Example.COM"}), clock.now()),
    ]
    with get_db(app).sessionmaker() as writer:
        counts = store_batches(writer, items)
        writer.commit()
    assert counts == [1, 1, 2]  # the repeated a1 is not stored twice; identify has no id
    assert count(session, Visitor) == 2
    assert count(session, Event) == 4
    ann = session.scalars(sa.select(Visitor).where(Visitor.visitor_key == "visitor_aaaa")).one()
    assert (ann.utm_source, ann.email, ann.last_event_at) == ("news", "ann@example.com", clock.now())
    assert ann.engaged_since == clock.now()  # add_to_cart engaged them
    types = session.scalars(sa.select(Event.type).where(Event.visitor_id == ann.id).order_by(Event.id)).all()
    assert types == ["page_view", "add_to_cart", "identify"]
    first = session.scalars(sa.select(Event).where(Event.client_event_id == "a1")).one()
    assert (first.url, first.referrer, first.product, first.occurred_at) == (
        f"{ORIGIN}/?utm_source=news", None, None, clock.now())
    assert session.scalars(sa.select(Event.product).where(Event.client_event_id == "b1")).one() == product


def test_a_visitor_with_nothing_pending_costs_no_cancelling_update(app, session, new_shop, clock):
    """The abandonment state tells whether a reminder can be pending; only then is the outbox touched."""
    engine = get_db(app).engine
    statements = []
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    sa_event.listen(engine, "before_cursor_execute", listener)
    try:
        with get_db(app).sessionmaker() as writer:
            store_batches(writer, [journaled(new_shop.shop.id, batch("visitor_cccc", {"type": "product_view"}), clock.now())])
            writer.commit()
    finally:
        sa_event.remove(engine, "before_cursor_execute", listener)
    assert statements and not [s for s in statements if s.lstrip().upper().startswith("UPDATE PUSHES")]


def test_a_returning_visitor_with_a_pending_reminder_has_it_cancelled(app, session, new_shop, clock):
    visitor = make_visitor(session, new_shop.shop.id, clock.now(), visitor_key="visitor_dddd")
    sub = make_subscription(session, visitor, clock.now())
    reminder = make_push(session, sub, clock.now(), kind="browse_abandonment",
                         group_key=browse_abandonment.group_key(visitor.id))
    visitor.left_at, visitor.engaged_since = clock.now(), None  # what planning the reminder leaves
    session.commit()
    assert browse_abandonment.may_have_pending(visitor)
    with get_db(app).sessionmaker() as writer:
        store_batches(writer, [journaled(new_shop.shop.id, batch("visitor_dddd", {"type": "page_view"}), clock.now())])
        writer.commit()
    session.expire_all()
    assert session.get(Push, reminder.id).status == "cancelled"
    assert session.get(Visitor, visitor.id).left_at is None


def test_concurrent_requests_through_two_processes_store_every_event_once(app_config, make_app, session, new_shop):
    """Two apps stand for two server processes, each with its own journal and drainer: same
    visitors, overlapping event ids, at once."""
    apps = [make_app(app_config), make_app(app_config)]
    public_key = new_shop.shop.public_key
    start = threading.Barrier(16)

    def post(n):
        client = apps[n % 2].test_client()
        start.wait(10)
        answers = []
        for round_ in range(10):
            visitor = f"visitor_{round_ % 3:04d}"  # three visitors shared by everyone
            body = {"visitor_id": visitor, "events": [
                {"type": "page_view", "id": f"shared-{round_}"},  # sent by all sixteen callers
                {"type": "product_view", "id": f"own-{n}-{round_}"},
            ]}
            response = client.post(f"/v1/shops/{public_key}/events", json=body, headers={"Origin": ORIGIN})
            assert response.status_code == 202, response.get_json()
            answers.append(response.get_json()["accepted"])
        return answers

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = [a for f in [pool.submit(post, n) for n in range(16)] for a in f.result(60)]
    assert count(session, Visitor) == 3
    assert count(session, Event, Event.client_event_id.like("shared-%")) == 10
    assert count(session, Event, Event.client_event_id.like("own-%")) == 160
    assert sum(answers) == 320  # every event was accepted; the database keeps each id once


def test_an_origin_added_in_the_settings_is_allowed_at_once_despite_the_shop_cache(client, new_shop):
    url = f"/v1/shops/{new_shop.shop.public_key}/config"
    other = "https://other-new_shop.example"
    assert client.get(url, headers={"Origin": ORIGIN}).status_code == 200  # the shop is now cached
    assert client.get(url, headers={"Origin": other}).status_code == 403
    admin = {"Authorization": f"Bearer {new_shop.admin_token}"}
    changed = client.put("/v1/admin/settings", json={"origins": [ORIGIN, other]}, headers=admin)
    assert changed.status_code == 200, changed.get_json()
    assert client.get(url, headers={"Origin": other}).status_code == 200
    removed = client.put("/v1/admin/settings", json={"origins": [other]}, headers=admin)
    assert removed.status_code == 200
    assert client.get(url, headers={"Origin": ORIGIN}).status_code == 403


def test_a_change_saved_in_the_dashboard_reaches_the_config_at_once_despite_the_shop_cache(client, new_shop):
    """Both merchant doors forget the cached shop after a change (one hook, not one per page)."""
    url = f"/v1/shops/{new_shop.shop.public_key}/config"
    assert client.get(url, headers={"Origin": ORIGIN}).get_json()["prompt"].get("title") != "Fresh title"  # cached
    csrf = log_in(client, new_shop.admin_token)
    form = {"csrf_token": csrf, "title": "Fresh title", "text": "Body", "yes": "", "no": "", "color": "#aa0000",
            "position": "top", "icon": "", "phone_position": "", "phone_title": "", "phone_text": ""}
    assert client.post("/admin/settings/soft-ask", data=form).status_code == 302
    assert client.get(url, headers={"Origin": ORIGIN}).get_json()["prompt"]["title"] == "Fresh title"


def test_the_shop_cache_keeps_the_configured_time_whoever_asks_first(app_config, make_app, new_shop):
    app = make_app({**app_config, "SHOP_CACHE_SECONDS": 5})
    admin = {"Authorization": f"Bearer {new_shop.admin_token}"}
    # A settings change is the first to touch the cache (to forget the shop) ...
    assert app.test_client().put("/v1/admin/settings", json={"name": "Renamed"}, headers=admin).status_code == 200
    assert shop_cache(app).ttl == 5  # ... and the cache still keeps shops for the configured time
