"""End to end per platform: a visitor subscribes at ``web-push-testing`` (a real push service
that decrypts what it gets), the platform's checkout webhook arrives, ``dispatch --once --at``
delivers the recovery push, the visitor clicks it, the platform's paid order stops the rest of
the series and is attributed to the push in the stats."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from server.core.models import Push, PushStatus
from server.core.tokens import read_click_token
from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import make_shop
from tests.integration.webhooks.test_platform_webhooks import (CART_TOKEN, DOMAIN, ORIGIN, SECRET, SITE, fixture, shopify,
                                                      woo)
from tests.integration.planning.test_presets_e2e import dispatch

pytestmark = pytest.mark.slow
SERIES = [3600, 6 * 3600, 2 * 86400]  # three steps, so the payment has steps left to stop


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def platform_shop(session, clock, platform, domain):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = platform, domain, SECRET
    session.commit()
    return new


def subscribe(app, client, shop, web_push_testing, visitor_key):
    """Subscribe a visitor through the collect API at the mock push service; return its inbox."""
    push_service = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", headers={"Origin": ORIGIN}, json={
        "visitor_id": visitor_key, "timezone": "UTC",
        "subscription": {"endpoint": push_service["endpoint"], "expirationTime": None, "keys": push_service["keys"]}})
    assert response.status_code == 201, response.json
    return push_service["clientHash"]


def set_series(client, new):
    response = client.put("/v1/admin/events/checkout_recovery", json={"delays": SERIES},
                          headers={"Authorization": f"Bearer {new.admin_token}"})
    assert response.status_code == 200, response.json


def recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started: datetime,
                  checkout_url: str, title: str, body: str, pay) -> dict:
    """From a recorded checkout: the first step arrives decrypted at +1 h, is clicked, and the
    payment stops the other steps; return the stats after it."""
    assert dispatch(app, started + timedelta(hours=1) - timedelta(seconds=1))["sent"] == 0
    assert dispatch(app, started + timedelta(hours=1))["sent"] == 1
    [message] = [m for m in web_push_testing.notifications(inbox) if m["kind"] == "checkout_recovery"]
    assert (message["title"], message["body"]) == (title, body)
    prefix = app.config["PUBLIC_URL"] + "/c/"
    assert message["url"].startswith(prefix)
    token = message["url"][len(prefix):]
    assert read_click_token(app.config["SECRET_KEY"], token) == message["push_id"]
    clock.set(started + timedelta(hours=1, minutes=5))
    click = client.get(f"/c/{token}")
    assert click.status_code == 302 and click.headers["Location"].startswith(checkout_url.split("?")[0])
    assert "utm_campaign=checkout_recovery" in click.headers["Location"]

    clock.set(started + timedelta(hours=1, minutes=20))
    pay()
    session.expire_all()
    steps = session.scalars(sa.select(Push).where(Push.kind == "checkout_recovery").order_by(Push.step)).all()
    assert [(s.step, s.status) for s in steps] == [(1, PushStatus.SENT.value), (2, PushStatus.CANCELLED.value),
                                                   (3, PushStatus.CANCELLED.value)]
    assert dispatch(app, started + timedelta(days=3))["sent"] == 0
    assert [m["kind"] for m in web_push_testing.notifications(inbox)].count("checkout_recovery") == 1
    return client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {new.admin_token}"}).get_json()


def test_shopify_cart_update_checkout_push_click_and_paid_order(app, client, session, clock, web_push_testing):
    new = platform_shop(session, clock, "shopify", DOMAIN)
    set_series(client, new)
    inbox = subscribe(app, client, new.shop, web_push_testing, "v-shopify-e2e-1")
    t0 = clock.now()
    assert dispatch(app, t0)["sent"] == 1  # the welcome
    # The widget on a Shopify theme reports Shopify's cart (its token carries a ?key= part).
    clock.set(t0 + timedelta(minutes=1))
    response = client.post(f"/v1/shops/{new.shop.public_key}/events", headers={"Origin": ORIGIN}, json={
        "visitor_id": "v-shopify-e2e-1", "events": [{"type": "cart_update", "cart": {
            "token": f"{CART_TOKEN}?key=0f4e2d", "total": "398.00", "currency": "USD", "item_count": 2,
            "items": [{"id": 49148385, "title": "IPod Nano - 8GB", "price": "199.00", "quantity": 2}]}}]})
    assert response.status_code == 202, response.json
    started = clock.set(t0 + timedelta(minutes=2)) or clock.now()
    checkout = fixture("shopify/checkouts_create.json")
    assert shopify(client, new.shop, "checkouts/create", checkout, webhook_id="e2e-1").status_code == 200

    def pay():
        response = shopify(client, new.shop, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="e2e-2")
        assert response.status_code == 200, response.json

    stats = recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started,
                          checkout["abandoned_checkout_url"], "Your order at Linen & Co is almost done",
                          "Finish checking out your 2 item(s) ($409.94) before they sell out.", pay)
    assert stats["by_kind"]["checkout_recovery"]["orders"] == 1
    assert stats["by_kind"]["checkout_recovery"]["gmv"] == "409.94"
    assert (stats["orders"], stats["gmv"]) == (1, "409.94")


def test_woocommerce_order_meta_checkout_push_click_and_paid_order(app, client, session, clock, web_push_testing):
    new = platform_shop(session, clock, "woocommerce", SITE)
    set_series(client, new)
    # The visitor id the companion plugin stores on the order is the widget's.
    inbox = subscribe(app, client, new.shop, web_push_testing, "v-woo-visitor-1")
    t0 = clock.now()
    assert dispatch(app, t0)["sent"] == 1  # the welcome
    started = clock.set(t0 + timedelta(minutes=2)) or clock.now()
    pending = fixture("woocommerce/order_created_pending.json")
    assert woo(client, new.shop, "order.created", pending, delivery_id="e2e-1").status_code == 200

    def pay():
        response = woo(client, new.shop, "order.updated", fixture("woocommerce/order_updated_processing.json"),
                       delivery_id="e2e-2")
        assert response.status_code == 200, response.json

    stats = recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started,
                          pending["payment_url"], "Your order at Linen & Co is almost done",
                          "Finish checking out your 3 item(s) ($29.35) before they sell out.", pay)
    assert stats["by_kind"]["checkout_recovery"]["orders"] == 1
    assert stats["by_kind"]["checkout_recovery"]["gmv"] == "29.35"
    assert (stats["orders"], stats["gmv"]) == (1, "29.35")
