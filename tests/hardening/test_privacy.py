"""Privacy: forgetting a visitor (API and CLI), expiring stale subscriptions, truncated addresses."""
from __future__ import annotations

import json
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Checkout, Click, Event, Order, Push, Subscription, Visitor
from server.ops.logs import anonymize_ip
from server.planning.expiry import expire_stale_subscriptions
from tests.factories import make_shop, make_subscription, make_visitor
from tests.hardening.conftest import assert_json_error, count


def add_push(session, sub, now, **values):
    push = Push(shop_id=sub.shop_id, visitor_id=sub.visitor_id, subscription_id=sub.id,
                kind=values.pop("kind", "welcome"), dedupe_key=f"t:{secrets.token_hex(6)}",
                title=values.pop("title", "Welcome"), body=values.pop("body", "Thanks for subscribing"),
                url=values.pop("url", "https://shop.example/"), due_at=now, created_at=now, **values)
    session.add(push)
    session.flush()
    return push


@pytest.fixture
def alex(session, shop, clock):
    """A visitor with identity, events, two subscriptions, pushes, a click, a checkout and an order."""
    now = clock.now()
    visitor = make_visitor(session, shop.id, now, visitor_key="visitor_alex_01", email="alex@example.com",
                           first_name="Alex", customer_id="cust-991", referrer="https://news.example/")
    subs = [make_subscription(session, visitor, now) for _ in range(2)]
    session.add_all([Event(shop_id=shop.id, visitor_id=visitor.id, type="page_view", occurred_at=now,
                           url="https://shop.example/p") for _ in range(3)])
    personal = add_push(session, subs[0], now, status="sent", title="Alex, your cart misses you",
                        body="Hi Alex", url="https://shop.example/checkout/tok-alex", context={"first_name": "Alex"})
    generic = add_push(session, subs[1], now, status="sent", title="Welcome", body="Thanks")
    pending = add_push(session, subs[0], now, kind="repurchase", title="Time for more?", body="x")
    session.add(Click(shop_id=shop.id, push_id=personal.id, visitor_id=visitor.id, kind="welcome", clicked_at=now))
    checkout = Checkout(shop_id=shop.id, token="tok-alex", visitor_id=visitor.id, email="alex@example.com",
                        total=Decimal("12.50"), currency="USD", started_at=now)
    session.add(checkout)
    session.flush()
    session.add(Order(shop_id=shop.id, order_ref="1001", visitor_id=visitor.id, checkout_id=checkout.id,
                      email="alex@example.com", status="paid", total=Decimal("12.50"), currency="USD",
                      paid_at=now, attributed_push_id=personal.id, attributed_kind="welcome"))
    # Someone else, who must not be touched.
    other = make_visitor(session, shop.id, now, visitor_key="visitor_bob_002", first_name="Bob")
    add_push(session, make_subscription(session, other, now), now, status="sent", title="Bob!")
    session.add(Event(shop_id=shop.id, visitor_id=other.id, type="page_view", occurred_at=now))
    session.commit()
    return {"visitor": visitor, "personal": personal.id, "generic": generic.id, "pending": pending.id}


def assert_forgotten(session, shop, alex):
    session.expire_all()
    assert session.scalar(sa.select(Visitor).where(Visitor.visitor_key == "visitor_alex_01")) is None
    assert count(session, Event) == 1 and count(session, Subscription) == 1  # Bob's remain
    personal = session.get(Push, alex["personal"])
    assert personal.visitor_id is None and personal.subscription_id is None and personal.context is None
    assert personal.title == "" and personal.body == "" and personal.url == ""
    assert personal.status == "sent" and personal.kind == "welcome"  # still counts as a sent welcome
    generic = session.get(Push, alex["generic"])
    assert generic.title == "Welcome" and generic.visitor_id is None and generic.status == "sent"
    assert session.get(Push, alex["pending"]).status == "cancelled"
    click = session.scalars(sa.select(Click)).one()
    assert click.visitor_id is None and click.push_id == alex["personal"]
    order = session.scalars(sa.select(Order)).one()
    assert order.visitor_id is None and order.email is None and order.total == Decimal("12.50")
    assert order.attributed_kind == "welcome"
    checkout = session.scalars(sa.select(Checkout)).one()
    assert checkout.visitor_id is None and checkout.email is None
    bob = session.scalar(sa.select(Visitor).where(Visitor.visitor_key == "visitor_bob_002"))
    assert bob is not None and bob.first_name == "Bob"
    assert session.scalar(sa.select(sa.func.count()).select_from(Push).where(Push.visitor_id == bob.id)) == 1
    # Nothing personal is left anywhere in the shop's push records.
    texts = " ".join(f"{p.title} {p.body} {p.url} {p.context}" for p in session.scalars(sa.select(Push)))
    assert "Alex" not in texts and "tok-alex" not in texts


def test_admin_api_forgets_a_visitor(client, session, new_shop, alex):
    shop = new_shop.shop
    response = client.delete("/v1/admin/visitors/visitor_alex_01",
                             headers={"Authorization": f"Bearer {new_shop.admin_token}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"visitor_id": "visitor_alex_01", "forgotten": {
        "events": 3, "subscriptions": 2, "pushes_anonymized": 3, "pushes_cancelled": 1, "clicks": 1,
        "checkouts": 1, "orders": 1}}
    assert_forgotten(session, shop, alex)
    again = client.delete("/v1/admin/visitors/visitor_alex_01",
                          headers={"Authorization": f"Bearer {new_shop.admin_token}"})
    assert_json_error(again, 404, "unknown_visitor")


def test_forget_needs_the_shops_own_admin_token(client, session, new_shop, alex, clock):
    url = "/v1/admin/visitors/visitor_alex_01"
    assert_json_error(client.delete(url), 401, "unauthorized")
    assert_json_error(client.delete(url, headers={"Authorization": "Bearer adm_wrong"}), 401, "unauthorized")
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"])
    session.commit()
    # Another shop's token cannot reach this shop's visitor: it is simply unknown there.
    assert_json_error(client.delete(url, headers={"Authorization": f"Bearer {other.admin_token}"}),
                      404, "unknown_visitor")
    session.expire_all()
    assert session.scalar(sa.select(Visitor).where(Visitor.visitor_key == "visitor_alex_01")) is not None
    assert count(session, Event) == 4


def test_cli_forgets_a_visitor(runner, session, new_shop, alex):
    result = runner.invoke(args=["visitor", "forget", "--shop", new_shop.shop.public_key,
                                 "--visitor", "visitor_alex_01"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["forgotten"]["events"] == 3
    assert_forgotten(session, new_shop.shop, alex)
    missing = runner.invoke(args=["visitor", "forget", "--shop", new_shop.shop.public_key, "--visitor", "nobody_123"])
    assert missing.exit_code != 0 and "unknown visitor" in missing.output
    bad_shop = runner.invoke(args=["visitor", "forget", "--shop", "pk_nope", "--visitor", "visitor_bob_002"])
    assert bad_shop.exit_code != 0 and "unknown shop" in bad_shop.output


def test_subscriptions_not_seen_for_60_days_expire(session, shop, clock):
    now = clock.now()
    visitor = make_visitor(session, shop.id, now)
    stale = make_subscription(session, visitor, now - timedelta(days=61))
    stale.last_seen_at = now - timedelta(days=60, seconds=1)
    fresh = make_subscription(session, visitor, now)
    fresh.last_seen_at = now - timedelta(days=59)
    gone = make_subscription(session, visitor, now, status="unsubscribed")
    gone.last_seen_at = now - timedelta(days=90)
    pending = add_push(session, stale, now)
    session.commit()
    assert expire_stale_subscriptions(session, now) == 1
    session.commit()
    session.expire_all()
    assert session.get(Subscription, stale.id).status == "expired"
    assert session.get(Subscription, stale.id).ended_at == now
    assert session.get(Subscription, fresh.id).status == "active"
    assert session.get(Subscription, gone.id).status == "unsubscribed"
    assert session.get(Push, pending.id).status == "cancelled"
    assert expire_stale_subscriptions(session, now) == 0


@pytest.mark.parametrize("raw, kept", [
    ("203.0.113.77", "203.0.113.0"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::"),
    ("::ffff:198.51.100.9", "198.51.100.0"),
    ("not an address", None),
])
def test_addresses_are_truncated(raw, kept):
    assert anonymize_ip(raw) == kept


def test_a_subscription_the_push_service_delivers_to_is_not_dropped_for_age(session, shop, clock):
    now = clock.now()
    visitor = make_visitor(session, shop.id, now)
    old = now - timedelta(days=90)
    delivered, clicked, idle = (make_subscription(session, visitor, old) for _ in range(3))
    for sub in (delivered, clicked, idle):
        sub.last_seen_at = old  # the browser has not come back to the shop since
    add_push(session, delivered, now - timedelta(days=10), status="sent", sent_at=now - timedelta(days=10))
    add_push(session, clicked, old, status="sent", sent_at=old, clicked_at=now - timedelta(days=5))
    add_push(session, idle, old, status="sent", sent_at=old)  # delivered, but long ago
    session.commit()
    assert expire_stale_subscriptions(session, now) == 1
    session.commit()
    session.expire_all()
    assert [session.get(Subscription, s.id).status for s in (delivered, clicked, idle)] == \
        ["active", "active", "expired"]



def test_each_expiry_sweep_reads_one_slice_of_subscriptions_and_the_next_one_goes_on(session, shop, clock):
    # A sweep runs on every dispatcher pass: it must cost the same however many subscriptions
    # the instance has, so it reads one id range and leaves a cursor for the next pass.
    now = clock.now()
    visitor = make_visitor(session, shop.id, now)
    old = now - timedelta(days=90)
    subs = [make_subscription(session, visitor, old) for _ in range(7)]
    for sub in subs:
        sub.last_seen_at = old
    # Kept alive by a recent delivery: the cursor moves past it, it does not hold the sweep up.
    add_push(session, subs[0], now - timedelta(days=1), status="sent", sent_at=now - timedelta(days=1))
    session.commit()
    expired = [expire_stale_subscriptions(session, now, slice_size=3) for _ in range(3)]
    session.commit()
    assert expired == [2, 3, 1]
    assert expire_stale_subscriptions(session, now, slice_size=3) == 0  # round again from the start: nothing left
    session.expire_all()
    assert [session.get(Subscription, s.id).status for s in subs] == ["active"] + ["expired"] * 6

def test_the_idle_age_is_configurable_and_can_be_switched_off(runner, app, session, shop, clock):
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now())
    session.commit()
    app.config["SUBSCRIPTION_IDLE_DAYS"] = 0
    later = (clock.now() + timedelta(days=400)).isoformat()
    assert runner.invoke(args=["dispatch", "--once", "--at", later]).exit_code == 0
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "active"
    app.config["SUBSCRIPTION_IDLE_DAYS"] = 120
    assert runner.invoke(args=["dispatch", "--once", "--at", (clock.now() + timedelta(days=119)).isoformat()]).exit_code == 0
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "active"
    assert runner.invoke(args=["dispatch", "--once", "--at", (clock.now() + timedelta(days=121)).isoformat()]).exit_code == 0
    session.expire_all()
    assert session.get(Subscription, sub.id).status == "expired"


def test_the_dispatchers_sweep_expires_stale_subscriptions(runner, session, shop, clock):
    visitor = make_visitor(session, shop.id, clock.now())
    stale = make_subscription(session, visitor, clock.now())
    session.commit()
    later = (clock.now() + timedelta(days=61)).isoformat()
    result = runner.invoke(args=["dispatch", "--once", "--at", later])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(Subscription, stale.id).status == "expired"
