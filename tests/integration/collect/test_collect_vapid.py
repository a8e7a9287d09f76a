"""The collect API and shops' own VAPID keys: the widget config names the shop's current key, a
subscription remembers the key it was made with, and a widget re-subscribing after a rotation
replaces its old subscription (same visitor, its pending pushes follow, no second welcome)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Push, Subscription
from server.core.vapid_keys import rotate
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.planning import hooks
from tests.factories import browser_keys, make_push

ORIGIN = "https://shop.example"
OLD = "https://fcm.googleapis.com/fcm/send/old-endpoint"
NEW = "https://fcm.googleapis.com/fcm/send/new-endpoint"


@pytest.fixture
def welcomed(monkeypatch):
    """The subscriptions announced to the presets (the welcome push)."""
    seen = []
    monkeypatch.setattr(hooks, "on_subscription_created", lambda session, shop, visitor, sub, now: seen.append(sub.id))
    return seen


def post(client, shop, endpoint, **extra):
    body = {"visitor_id": "visitor_0001", "subscription": {"endpoint": endpoint, "keys": browser_keys()}, **extra}
    return client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body, headers={"Origin": ORIGIN})


def config_key(client, shop):
    return client.get(f"/v1/shops/{shop.public_key}/config", headers={"Origin": ORIGIN}).get_json()["vapid_public_key"]


def test_the_widget_config_names_the_shops_current_key_after_a_rotation(app, client, runner, shop):
    assert config_key(client, shop) == public_key_b64(get_vapid(app))
    rotated = runner.invoke(args=["vapid", "rotate", "--shop", shop.public_key])
    assert rotated.exit_code == 0, rotated.output
    assert config_key(client, shop) == __import__("json").loads(rotated.output)["public_key"]


def test_a_subscription_remembers_the_key_it_was_made_with(app, client, session, shop, clock):
    instance = public_key_b64(get_vapid(app))
    on_instance = post(client, shop, OLD, application_server_key=instance).get_json()["subscription_id"]
    key = rotate(session, shop, clock.now())
    session.commit()
    on_shop_key = post(client, shop, NEW).get_json()["subscription_id"]  # no key named: the current one
    assert post(client, shop, OLD).status_code == 200  # re-sent without a key: the stored one stays
    session.expire_all()
    assert session.get(Subscription, on_instance).vapid_key_id is None
    assert session.get(Subscription, on_shop_key).vapid_key_id == key.id


def test_a_key_that_is_not_the_shops_is_refused(client, session, shop):
    other_key = browser_keys()["p256dh"]  # a valid P-256 point, but not one of our keys
    response = post(client, shop, OLD, application_server_key=other_key)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_vapid_key"
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0


def test_a_resubscription_replaces_the_old_one(app, client, session, shop, clock, welcomed):
    old_id = post(client, shop, OLD, application_server_key=public_key_b64(get_vapid(app))).get_json()["subscription_id"]
    pending = make_push(session, session.get(Subscription, old_id), clock.now(), kind="shipped")
    key = rotate(session, shop, clock.now())
    session.commit()

    response = post(client, shop, NEW, visitor_id="other_visitor", application_server_key=key.public_key, replaces=OLD)

    assert response.status_code == 201
    new_id = response.get_json()["subscription_id"]
    session.expire_all()
    old, new = session.get(Subscription, old_id), session.get(Subscription, new_id)
    assert (old.status, old.ended_at) == ("expired", clock.now())
    assert new.visitor_id == old.visitor_id and new.vapid_key_id == key.id and new.status == "active"
    assert session.get(Push, pending.id).subscription_id == new_id
    assert welcomed == [old_id]  # the replacement is no new subscriber
