"""End to end: a back-in-stock alert through the HTTP API, the signed products webhook and
``dispatch --once --at``, delivered by ``web-push-testing`` (a real push service that decrypts
what it gets); on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from server.core.tokens import read_click_token
from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import make_shop
from tests.integration.planning.test_presets_e2e import dispatch, webhook

ORIGIN = "https://shop.example"
VISITOR = "v-alerts-e2e-01"
pytestmark = pytest.mark.slow

KETTLE = {"product_id": "kettle-1", "variant_id": 4401, "title": "Copper Kettle", "price": "89.00",
          "currency": "USD", "available": False, "inventory": 0, "url": f"{ORIGIN}/products/copper-kettle",
          "image": f"{ORIGIN}/img/kettle.jpg"}


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def test_back_in_stock_arrives_decrypted_naming_the_product(app, client, session, clock, web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    shop, collect, headers = new.shop, f"/v1/shops/{new.shop.public_key}", {"Origin": ORIGIN}
    push_service = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    inbox = push_service["clientHash"]

    # The visitor subscribes (the welcome goes out), the shop reports the kettle sold out.
    response = client.post(f"{collect}/subscriptions", headers=headers, json={
        "visitor_id": VISITOR, "timezone": "UTC",
        "subscription": {"endpoint": push_service["endpoint"], "expirationTime": None, "keys": push_service["keys"]}})
    assert response.status_code == 201, response.json
    assert dispatch(app, clock.now())["sent"] == 1
    webhook(client, shop, new.secret, "products", {**KETTLE, "id": "p-1"}, clock.now())

    # "Notify me" on the kettle page, as the widget posts it.
    response = client.post(f"{collect}/interests", headers=headers, json={
        "visitor_id": VISITOR, "product_id": "kettle-1", "variant_id": 4401, "kinds": ["back_in_stock", "price_drop"]})
    assert response.status_code == 201, response.json

    # Back in stock an hour later: planned by the webhook, sent by the next dispatch.
    clock.advance(hours=1)
    webhook(client, shop, new.secret, "products", {**KETTLE, "id": "p-2", "available": True, "inventory": 6},
            clock.now())
    assert dispatch(app, clock.now()) == {"planned": 0, "sent": 1, "failed": 0, "expired": 0, "skipped": 0}

    messages = {m["kind"]: m for m in web_push_testing.notifications(inbox)}
    assert set(messages) == {"welcome", "back_in_stock"}
    alert = messages["back_in_stock"]
    assert alert["title"] == "Copper Kettle is back in stock"
    assert alert["body"].startswith("The Copper Kettle you asked about is available again for $89.00.")
    assert alert["image"] == KETTLE["image"]
    token = alert["url"].removeprefix(app.config["PUBLIC_URL"] + "/c/")
    assert read_click_token(app.config["SECRET_KEY"], token) == alert["push_id"]
    click = client.get(f"/c/{token}")
    assert click.status_code == 302
    assert click.headers["Location"].startswith(KETTLE["url"] + "?utm_source=pushcart")
    assert "utm_campaign=back_in_stock" in click.headers["Location"]

    # A later drop by 20 % is a price-drop alert (another kind: not held by the back-in-stock one).
    clock.advance(hours=1)
    webhook(client, shop, new.secret, "products", {**KETTLE, "id": "p-3", "available": True, "price": "71.20"},
            clock.now())
    assert dispatch(app, clock.now())["sent"] == 1
    drop = [m for m in web_push_testing.notifications(inbox) if m["kind"] == "price_drop"]
    assert [m["body"] for m in drop] == ["Copper Kettle is now $71.20 (was $89.00)."]
