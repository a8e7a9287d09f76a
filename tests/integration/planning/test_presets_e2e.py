"""End to end: the five preset pushes through the HTTP API and ``flask --app wsgi dispatch --once --at``.

A visitor subscribes at ``web-push-testing`` (a real push service that decrypts what it gets),
browses, carts, starts a checkout and leaves; the shop's back end then posts a paid order and a
shipment. The dispatcher runs at simulated times (once as a separate process, then through the
CLI in this process to keep the test fast): each kind arrives,
decrypted, with its rendered title and a click link, at its time and not a second before.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.webhooks.native import sign
from server.core.tokens import read_click_token
from server.delivery.push.vapid import get_vapid, public_key_b64
from tests.factories import cli_env, dispatch, make_shop

ROOT = Path(__file__).resolve().parents[3]
ORIGIN = "https://shop.example"
pytestmark = pytest.mark.slow

PRODUCT = {"id": "sku-7", "title": "Linen Shirt", "price": "49.00", "currency": "USD",
           "url": f"{ORIGIN}/products/linen-shirt", "image": f"{ORIGIN}/img/shirt.jpg"}
CART = {"token": "cart-e2e", "total": "98.00", "currency": "USD", "item_count": 2,
        "checkout_url": f"{ORIGIN}/checkout/cart-e2e",
        "items": [{"id": "sku-7", "title": "Linen Shirt", "price": "49.00", "quantity": 2,
                   "image": f"{ORIGIN}/img/shirt.jpg"}]}


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")




def dispatch_process(app, at: datetime) -> dict[str, int]:
    """Run ``flask --app wsgi dispatch --once --at AT`` as its own process on the test database."""
    env = cli_env(app, NO_PROXY="*")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "dispatch", "--once", "--at", stamp(at)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def webhook(client, shop, secret, topic, body, now):
    data = json.dumps(body).encode()
    response = client.post(f"/v1/webhooks/{shop.public_key}/{topic}", data=data, content_type="application/json",
                           headers={"X-Pushcart-Signature": sign(secret, int(now.timestamp()), data)})
    assert response.status_code == 200, response.json
    return response


def test_each_preset_arrives_decrypted_at_its_time_and_not_before(app, client, session, clock, web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    shop = new.shop
    session.commit()
    collect = f"/v1/shops/{shop.public_key}"
    headers = {"Origin": ORIGIN}
    push_service = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    inbox = push_service["clientHash"]
    seen: dict[str, dict] = {}

    def arrived() -> dict[str, dict]:
        """The new notifications since the last look, by kind."""
        fresh = {}
        for message in web_push_testing.notifications(inbox):
            if message["push_id"] not in {m["push_id"] for m in seen.values()}:
                fresh[message["kind"]] = message
        seen.update(fresh)
        return fresh

    def check(message: dict, kind: str, title: str, target: str) -> None:
        assert message["kind"] == kind and message["title"] == title
        prefix = app.config["PUBLIC_URL"] + "/c/"
        assert message["url"].startswith(prefix)
        token = message["url"][len(prefix):]
        assert read_click_token(app.config["SECRET_KEY"], token) == message["push_id"]
        click = client.get(f"/c/{token}")
        assert click.status_code == 302 and click.headers["Location"].startswith(target)

    t0 = clock.now()
    # 1. Subscribing plans the welcome, due at once.
    response = client.post(f"{collect}/subscriptions", headers=headers, json={
        "visitor_id": "v-e2e-0001", "timezone": "UTC",
        "subscription": {"endpoint": push_service["endpoint"], "expirationTime": None, "keys": push_service["keys"]}})
    assert response.status_code == 201, response.json
    assert dispatch(app, t0 - timedelta(seconds=1))["sent"] == 0 and arrived() == {}
    # Once as a separate process with the configuration in its environment, as an operator runs it.
    assert dispatch_process(app, t0) == {"planned": 0, "sent": 1, "failed": 0, "expired": 0, "skipped": 0}
    check(arrived()["welcome"], "welcome", "Welcome to Linen & Co!", f"{ORIGIN}/")

    # 2. Browse, cart, start a checkout, leave.
    for minutes, event in ((1, {"type": "product_view", "product": PRODUCT}),
                           (2, {"type": "add_to_cart", "product": PRODUCT, "cart": CART}),
                           (3, {"type": "checkout_started", "cart": CART}),
                           (4, {"type": "leave"})):
        clock.set(t0 + timedelta(minutes=minutes))
        response = client.post(f"{collect}/events", headers=headers,
                               json={"visitor_id": "v-e2e-0001", "events": [event]})
        assert response.status_code == 202, response.json
    started, left = t0 + timedelta(minutes=3), t0 + timedelta(minutes=4)

    # 3. checkout_recovery: one hour after the checkout started.
    assert dispatch(app, started + timedelta(hours=1) - timedelta(seconds=1))["sent"] == 0 and arrived() == {}
    assert dispatch(app, started + timedelta(hours=1))["sent"] == 1
    check(arrived()["checkout_recovery"], "checkout_recovery", "Your order at Linen & Co is almost done",
          CART["checkout_url"])

    # 4. browse_abandonment (the cart variant): 24 h after leaving.
    assert dispatch(app, left + timedelta(hours=24) - timedelta(seconds=1))["sent"] == 0 and arrived() == {}
    assert dispatch(app, left + timedelta(hours=24))["sent"] == 1
    message = arrived()["browse_abandonment"]
    check(message, "browse_abandonment", "Linen Shirt is waiting for you", CART["checkout_url"])
    assert message["body"] == "Pick up where you left off at Linen & Co." and message["image"] == PRODUCT["image"]

    # 5. The shop's back end: the order is paid, then shipped.
    paid = clock.set(t0 + timedelta(hours=25)) or clock.now()
    webhook(client, shop, new.secret, "orders", {"id": "evt-o1", "order_id": "1001", "status": "paid",
                                                  "visitor_id": "v-e2e-0001", "checkout_token": "cart-e2e",
                                                  "total": "98.00", "currency": "USD"}, paid)
    assert dispatch(app, paid - timedelta(seconds=1))["sent"] == 0 and arrived() == {}
    webhook(client, shop, new.secret, "shipments", {"id": "evt-s1", "order_id": "1001", "carrier": "UPS",
                                                     "tracking_url": "https://carrier.example/t/1Z999"}, paid)
    assert dispatch(app, paid)["sent"] == 1
    check(arrived()["shipped"], "shipped", "Your order 1001 has shipped", "https://carrier.example/t/1Z999")

    # 6. repurchase: seven days after payment.
    assert dispatch(app, paid + timedelta(days=7) - timedelta(seconds=1))["sent"] == 0 and arrived() == {}
    assert dispatch(app, paid + timedelta(days=7))["sent"] == 1
    check(arrived()["repurchase"], "repurchase", "Time for a refill?", f"{ORIGIN}/")
    assert sorted(seen) == ["browse_abandonment", "checkout_recovery", "repurchase", "shipped", "welcome"]
