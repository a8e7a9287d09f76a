"""The merchant API's VAPID keys: list them with their live subscriptions, and rotate."""
from __future__ import annotations

from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import make_shop, make_subscription, make_visitor


def test_list_and_rotate_the_shops_keys(app, client, session, clock):
    new = make_shop(session, clock.now())
    make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now())
    session.commit()
    auth = {"Authorization": f"Bearer {new.admin_token}"}
    instance = public_key_b64(get_vapid(app))

    listed = client.get("/v1/admin/vapid-keys", headers=auth)
    assert listed.status_code == 200
    assert listed.get_json() == {"keys": [{"id": None, "public_key": instance, "status": "active", "created_at": None,
                                           "retired_at": None, "live_subscriptions": 1}]}

    rotated = client.post("/v1/admin/vapid-keys/rotate", headers=auth)
    assert rotated.status_code == 201
    key = rotated.get_json()
    assert key["status"] == "active" and key["public_key"] != instance and "private" not in str(key)
    assert [(k["id"], k["status"]) for k in client.get("/v1/admin/vapid-keys", headers=auth).get_json()["keys"]] == [
        (None, "retiring"), (key["id"], "active")]
    # The widget config follows at once in this process.
    config = client.get(f"/v1/shops/{new.shop.public_key}/config").get_json()
    assert config["vapid_public_key"] == key["public_key"]


def test_the_keys_need_the_admin_token(client, session, clock):
    make_shop(session, clock.now())
    session.commit()
    assert client.get("/v1/admin/vapid-keys").status_code == 401
    assert client.post("/v1/admin/vapid-keys/rotate", headers={"Authorization": "Bearer nope"}).status_code == 401
