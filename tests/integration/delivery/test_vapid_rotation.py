"""VAPID key rotation without losing anyone: each subscription is signed with the key it was made
with. ``web-push-testing`` checks the VAPID signature against the key a subscription was made
with, so a push signed with any other key is refused there (and ``failed`` here)."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from server.core.models import Push, Subscription, VapidKey
from server.core.vapid_keys import current_key, rotate
from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import make_push, make_shop, make_subscription, make_visitor


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def subscribe_with(session, shop, clock, web_push_testing, public_key, vapid_key_id):
    """A visitor subscribed at the mock push service with ``public_key``, stored with ``vapid_key_id``."""
    data = web_push_testing.subscribe(public_key)
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now(), endpoint=data["endpoint"], keys=data["keys"],
                            vapid_key_id=vapid_key_id)
    return sub, data["clientHash"]


def statuses(session):
    session.expire_all()
    return {p.id: (p.status, p.http_status) for p in session.scalars(sa.select(Push))}


def test_subscriptions_made_with_old_keys_still_receive_after_two_rotations(
        app, session, clock, dispatcher, web_push_testing):
    shop = make_shop(session, clock.now()).shop
    on_instance, instance_hash = subscribe_with(session, shop, clock, web_push_testing,
                                                public_key_b64(get_vapid(app)), None)
    first = rotate(session, shop, clock.now())
    on_first, first_hash = subscribe_with(session, shop, clock, web_push_testing, first.public_key, first.id)
    second = rotate(session, shop, clock.now())
    on_second, second_hash = subscribe_with(session, shop, clock, web_push_testing, second.public_key, second.id)
    pushes = [make_push(session, sub, clock.now(), kind="shipped") for sub in (on_instance, on_first, on_second)]
    session.commit()

    assert dispatcher.run_pass().sent == 3

    for push, client_hash in zip(pushes, (instance_hash, first_hash, second_hash)):
        assert [m["push_id"] for m in web_push_testing.notifications(client_hash)] == [push.id]
    assert current_key(session, shop.id).id == second.id
    assert session.get(VapidKey, first.id).status == "retiring"


def test_a_push_signed_with_another_key_than_the_subscriptions_is_refused(
        app, session, clock, dispatcher, web_push_testing):
    """The check above can fail: a subscription made with a shop key but recorded as made with
    the instance key gets a push signed with the instance key, which the push service refuses."""
    shop = make_shop(session, clock.now()).shop
    key = rotate(session, shop, clock.now())
    sub, client_hash = subscribe_with(session, shop, clock, web_push_testing, key.public_key, None)
    push = make_push(session, sub, clock.now(), kind="shipped")
    session.commit()

    counts = dispatcher.run_pass()

    assert (counts.sent, counts.failed) == (0, 1)
    assert statuses(session)[push.id][1] in (400, 401, 403)
    assert web_push_testing.notifications(client_hash) == []


def test_rotate_and_status_commands(app, runner, session, clock, web_push_testing):
    shop = make_shop(session, clock.now()).shop
    visitor = make_visitor(session, shop.id, clock.now())
    make_subscription(session, visitor, clock.now())  # on the instance key
    session.commit()

    rotated = runner.invoke(args=["vapid", "rotate", "--shop", shop.public_key])
    assert rotated.exit_code == 0, rotated.output
    first = json.loads(rotated.output)
    assert first["status"] == "active" and first["public_key"] != public_key_b64(get_vapid(app))

    status = runner.invoke(args=["vapid", "status", "--shop", shop.public_key])
    assert status.exit_code == 0, status.output
    rows = [json.loads(line) for line in status.output.splitlines()]
    assert [(r["id"], r["status"], r["live_subscriptions"]) for r in rows] == [
        (None, "retiring", 1), (first["id"], "active", 0)]

    # A second rotation: the first key has no live subscription, so it retires at once.
    second = json.loads(runner.invoke(args=["vapid", "rotate", "--shop", shop.public_key]).output)
    rows = [json.loads(line) for line in runner.invoke(args=["vapid", "status", "--shop", shop.public_key]).output.splitlines()]
    assert [(r["id"], r["status"]) for r in rows] == [(None, "retiring"), (first["id"], "retired"),
                                                        (second["id"], "active")]
    assert "PRIVATE" not in status.output and "private" not in status.output


def test_a_retiring_key_retires_when_its_last_subscription_ends(app, session, clock, dispatcher):
    from server.core.vapid_keys import retire_unused

    shop = make_shop(session, clock.now()).shop
    old = rotate(session, shop, clock.now())
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now(), vapid_key_id=old.id)
    rotate(session, shop, clock.now())
    assert retire_unused(session, clock.now()) == 0 and old.status == "retiring"

    session.get(Subscription, sub.id).status = "expired"
    session.commit()
    dispatcher.run_pass()  # its sweeps retire the key
    session.expire_all()
    old = session.get(VapidKey, old.id)
    assert (old.status, old.retired_at) == ("retired", clock.now())
