"""Real pushes to ``web-push-testing``: they arrive, decrypt to the contract's payload, and a
subscription expired there answers 410 and is marked expired here."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Push, Subscription
from server.core.tokens import read_click_token
from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import make_push, make_shop, make_subscription, make_visitor


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def subscribe(session, app, clock, web_push_testing):
    """A visitor subscribed at the mock push service with our VAPID key."""
    data = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    shop = make_shop(session, clock.now()).shop
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now(), endpoint=data["endpoint"], keys=data["keys"])
    return sub, data["clientHash"]


def test_pushes_arrive_and_decrypt_to_the_contract_payload(app, session, clock, dispatcher, web_push_testing):
    sub, client_hash = subscribe(session, app, clock, web_push_testing)
    shipped = make_push(session, sub, clock.now(), kind="shipped", title="Your order is on its way 🚚",
                        body="Track it with UPS", icon="https://shop.example/icon.png", topic=None)
    reminder = make_push(session, sub, clock.now(), kind="checkout_recovery", title="Forgot something?",
                         body="Ünïcode cart: 2 items", image="https://shop.example/cart.jpg",
                         topic="checkout-t1")
    session.commit()

    counts = dispatcher.run_pass()

    assert counts.as_json() == {"planned": 0, "sent": 2, "failed": 0, "expired": 0, "skipped": 0}
    received = {m["push_id"]: m for m in web_push_testing.notifications(client_hash)}
    assert set(received) == {shipped.id, reminder.id}
    first = received[shipped.id]
    assert set(first) == {"push_id", "kind", "title", "body", "icon", "url"}
    assert (first["kind"], first["title"], first["body"]) == ("shipped", "Your order is on its way 🚚",
                                                               "Track it with UPS")
    second = received[reminder.id]
    assert set(second) == {"push_id", "kind", "title", "body", "image", "url", "tag"}
    assert second["tag"] == "checkout-t1" and second["body"] == "Ünïcode cart: 2 items"
    for push_id, message in received.items():
        token = message["url"].removeprefix("http://pushcart.test/c/")
        assert read_click_token("test-secret-key", token) == push_id
    session.expire_all()
    assert {p.status for p in session.scalars(sa.select(Push))} == {"sent"}


def test_a_subscription_expired_at_the_push_service_gets_410_and_is_marked_expired(
        app, session, clock, dispatcher, web_push_testing):
    sub, client_hash = subscribe(session, app, clock, web_push_testing)
    push = make_push(session, sub, clock.now(), kind="shipped")
    session.commit()
    web_push_testing.expire(client_hash)

    assert dispatcher.run_pass().expired == 1

    session.expire_all()
    row = session.get(Push, push.id)
    assert (row.status, row.http_status) == ("expired", 410)
    gone = session.get(Subscription, sub.id)
    assert gone.status == "expired" and gone.ended_at == clock.now()
