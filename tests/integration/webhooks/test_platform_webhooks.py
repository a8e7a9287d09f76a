"""Shopify and WooCommerce webhooks as the platforms send them, the native products topic, the
shop's platform settings and Shopify's app proxy; on SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from server.core.db import get_db
from server.collect.journal import event_journal
from server.core.models import (Checkout, Event, Order, Product, Push, PushStatus, Shipment, Shop, Visitor, WebhookReceipt)
from server.planning import hooks
from server.webhooks.shopify import proxy_signature
from server.webhooks.native import sign
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in
from tests.presets_support import pushes

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECRET = "shpss_test_signing_key"
DOMAIN = "linen-co.myshopify.com"
SITE = "https://wp.linen.example"
ORIGIN = "https://shop.example"
CART_TOKEN = "68778783ad298f1c80c3bafcddeea02f"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def b64hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def shop_keys(session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = "shopify", DOMAIN, SECRET
    session.commit()
    return new


@pytest.fixture
def woo_keys(session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = "woocommerce", SITE, SECRET
    session.commit()
    return new


def subscribed_visitor(session, shop, clock, **fields):
    visitor = make_visitor(session, shop.id, clock.now(), **fields)
    make_subscription(session, visitor, clock.now())
    session.commit()
    return visitor


def shopify(client, shop, topic, body, *, webhook_id="wh-1", secret=SECRET, domain=DOMAIN, signature=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id,
               "X-Shopify-Hmac-Sha256": b64hmac(secret, data) if signature is None else signature,
               "X-Shopify-Api-Version": "2025-10"}
    if domain is not None:
        headers["X-Shopify-Shop-Domain"] = domain
    return client.post(f"/v1/integrations/shopify/{shop.public_key}", data=data, headers=headers,
                       content_type="application/json")


def woo(client, shop, topic, body, *, webhook_id="12", delivery_id="d-1", secret=SECRET, source=SITE + "/",
        signature=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-ID": webhook_id, "X-WC-Webhook-Delivery-ID": delivery_id,
               "X-WC-Webhook-Signature": b64hmac(secret, data) if signature is None else signature,
               "X-WC-Webhook-Resource": topic.split(".")[0], "X-WC-Webhook-Event": topic.split(".")[-1]}
    if source is not None:
        headers["X-WC-Webhook-Source"] = source
    return client.post(f"/v1/integrations/woocommerce/{shop.public_key}", data=data, headers=headers,
                       content_type="application/json")


def counts(session):
    session.expire_all()
    return {m.__name__: session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (Checkout, Order, Shipment, Product, WebhookReceipt, Push)}


def send_cart_update(client, shop, visitor_key, token):
    response = client.post(f"/v1/shops/{shop.public_key}/events", headers={"Origin": ORIGIN}, json={
        "visitor_id": visitor_key, "events": [{"type": "cart_update", "cart": {
            "token": token, "total": "398.00", "currency": "USD", "item_count": 2,
            # Shopify's /cart.js gives variant ids as numbers.
            "items": [{"id": 49148385, "title": "IPod Nano - 8GB", "price": "199.00", "quantity": 2}]}}]})
    assert response.status_code == 202, response.json


# -- the widget's cart_update ------------------------------------------------------------------


def test_cart_update_is_stored_and_keeps_the_cart_token_without_its_key(client, session, shop_keys):
    send_cart_update(client, shop_keys.shop, "v-shopify-01", f"{CART_TOKEN}?key=5d3f1a0c9b")
    session.expire_all()
    visitor = session.scalars(sa.select(Visitor)).one()
    assert visitor.cart_token == CART_TOKEN
    assert visitor.engaged_since is not None  # carting engages, like add_to_cart
    [event] = session.scalars(sa.select(Event)).all()
    assert event.type == "cart_update" and event.cart["items"][0]["id"] == "49148385"
    send_cart_update(client, shop_keys.shop, "v-shopify-01", "c1-new-token")
    session.expire_all()
    assert session.scalars(sa.select(Visitor)).one().cart_token == "c1-new-token"


def test_config_names_the_platform(client, shop_keys):
    body = client.get(f"/v1/shops/{shop_keys.shop.public_key}/config", headers={"Origin": ORIGIN}).get_json()
    assert body["platform"] == "shopify"


# -- Shopify -----------------------------------------------------------------------------------


def test_shopify_checkout_finds_the_visitor_by_cart_token_and_plans_recovery(client, session, clock, shop_keys):
    visitor = subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01")
    send_cart_update(client, shop_keys.shop, "v-shopify-01", f"{CART_TOKEN}?key=abc")
    response = shopify(client, shop_keys.shop, "checkouts/create", fixture("shopify/checkouts_create.json"))
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    session.expire_all()
    checkout = session.scalars(sa.select(Checkout)).one()
    assert (checkout.token, checkout.visitor_id, checkout.total, checkout.item_count, checkout.currency) == (
        "2a1ace52255252df566af0faaedfbfa7", visitor.id, Decimal("409.94"), 2, "USD")
    assert checkout.checkout_url.startswith("https://checkout.example/orders/690933842/")
    assert checkout.items[0] == {"id": "49148385", "title": "IPod Nano - 8GB - Red", "price": "199.00", "quantity": 1}
    assert checkout.email == "bob.norman@mail.example.com"
    assert session.get(Visitor, visitor.id).first_name == "Bob"
    [step] = pushes(session, kind="checkout_recovery")
    assert step.due_at == clock.now() + timedelta(hours=1) and step.url == checkout.checkout_url


def test_shopify_checkout_update_of_a_completed_checkout_changes_nothing(client, session, clock, shop_keys):
    subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    body = {**fixture("shopify/checkouts_create.json"), "completed_at": "2012-10-12T07:15:27-04:00"}
    response = shopify(client, shop_keys.shop, "checkouts/update", body)
    assert response.status_code == 200 and "ignored" in response.json
    assert counts(session) == {"Checkout": 0, "Order": 0, "Shipment": 0, "Product": 0, "WebhookReceipt": 0, "Push": 0}


def test_shopify_paid_order_stops_the_series_and_plans_repurchase(client, session, clock, shop_keys):
    visitor = subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    shopify(client, shop_keys.shop, "checkouts/create", fixture("shopify/checkouts_create.json"))
    clock.advance(minutes=20)
    response = shopify(client, shop_keys.shop, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="wh-2")
    assert response.status_code == 200, response.json
    session.expire_all()
    order = session.scalars(sa.select(Order)).one()
    checkout = session.scalars(sa.select(Checkout)).one()
    assert (order.order_ref, order.status, order.total, order.visitor_id, order.checkout_id) == (
        "450789469", "paid", Decimal("409.94"), visitor.id, checkout.id)
    assert checkout.paid_at == clock.now()
    [step] = pushes(session, kind="checkout_recovery")
    assert (step.status, step.error) == (PushStatus.CANCELLED.value, "order_paid")
    [repurchase] = pushes(session, kind="repurchase")
    assert repurchase.due_at == clock.now() + timedelta(days=7)


def test_shopify_order_without_a_checkout_finds_the_visitor_by_cart_token(client, session, clock, shop_keys):
    visitor = subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    body = {**fixture("shopify/orders_paid.json"), "checkout_token": None, "email": None, "customer": None}
    assert shopify(client, shop_keys.shop, "orders/paid", body).status_code == 200
    session.expire_all()
    assert session.scalars(sa.select(Order)).one().visitor_id == visitor.id


def test_shopify_fulfillment_plans_the_shipped_push_once(client, session, clock, shop_keys):
    subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    shopify(client, shop_keys.shop, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="wh-2")
    response = shopify(client, shop_keys.shop, "fulfillments/create", fixture("shopify/fulfillments_create.json"),
                       webhook_id="wh-3")
    assert response.status_code == 200, response.json
    session.expire_all()
    shipment = session.scalars(sa.select(Shipment)).one()
    assert (shipment.order_ref, shipment.carrier, shipment.tracking_url) == (
        "450789469", "UPS", "https://www.ups.com/track?tracknum=1Z2345")
    [row] = pushes(session, kind="shipped")
    assert row.url == shipment.tracking_url and row.due_at == clock.now()
    # The same fulfillment under another delivery id is not a second shipment.
    again = shopify(client, shop_keys.shop, "fulfillments/create", fixture("shopify/fulfillments_create.json"),
                    webhook_id="wh-4")
    assert again.status_code == 200 and counts(session)["Shipment"] == 1 and len(pushes(session, kind="shipped")) == 1


def test_shopify_product_update_upserts_each_variant_with_before_and_after(client, session, clock, shop_keys,
                                                                          monkeypatch):
    seen = []
    monkeypatch.setattr(hooks, "on_product_updated",
                        lambda session, shop, before, after, now: seen.append((before, after, now)))
    body = fixture("shopify/products_update.json")
    assert shopify(client, shop_keys.shop, "products/update", body).status_code == 200
    session.expire_all()
    rows = {p.variant_ref: p for p in session.scalars(sa.select(Product))}
    assert set(rows) == {"808950810", "49148385", "39072856"}
    pink, red, green = rows["808950810"], rows["49148385"], rows["39072856"]
    assert (pink.title, pink.price, pink.currency, pink.available, pink.inventory) == (
        "IPod Nano - 8GB - Pink", Decimal("199.00"), "USD", True, 10)
    assert (red.available, red.inventory) == (False, 0)  # sold out, inventory policy "deny"
    assert green.available is True  # policy "continue": still sellable at 0
    assert pink.url == f"{ORIGIN}/products/ipod-nano?variant=808950810" and pink.image.startswith("https://cdn.shopify")
    assert [before for before, _, _ in seen] == [None, None, None]
    # Back in stock, and cheaper: the hook sees the state before and after.
    body["variants"][1].update(inventory_quantity=5, price="149.00")
    clock.advance(hours=1)
    assert shopify(client, shop_keys.shop, "products/update", body, webhook_id="wh-9").status_code == 200
    before, after, now = seen[4]
    assert (before.variant_ref, before.available, before.price) == ("49148385", False, Decimal("199.00"))
    assert (after.available, after.inventory, after.price, now) == (True, 5, Decimal("149.00"), clock.now())
    assert counts(session)["Product"] == 3


def test_shopify_2026_07_product_update_sold_out_then_restocked_sends_back_in_stock(client, session, clock,
                                                                                    shop_keys):
    # Current payloads carry no inventory_management: stock 0 with policy deny is sold out all the same.
    visitor = subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-restock")
    body = fixture("shopify/products_update_2026_07.json")
    assert "inventory_management" not in body["variants"][1]
    assert shopify(client, shop_keys.shop, "products/update", body).status_code == 200
    session.expire_all()
    rows = {p.variant_ref: p for p in session.scalars(sa.select(Product))}
    small, medium, large = rows["642667041472713922"], rows["757650484644203962"], rows["858543219648109713"]
    assert (small.available, medium.available, medium.inventory, large.available) == (True, False, 0, True)
    interest = client.post(f"/v1/shops/{shop_keys.shop.public_key}/interests", headers={"Origin": ORIGIN}, json={
        "visitor_id": visitor.visitor_key, "product_id": "788032119674292922", "variant_id": "757650484644203962",
        "kinds": ["back_in_stock"]})
    assert interest.status_code == 201, interest.json

    body["variants"][1].update(inventory_quantity=4, old_inventory_quantity=0)
    clock.advance(hours=1)
    assert shopify(client, shop_keys.shop, "products/update", body, webhook_id="wh-restock").status_code == 200

    alerts = pushes(session, kind="back_in_stock")
    assert len(alerts) == 1 and alerts[0].title == "Example T-Shirt - Medium is back in stock"


@pytest.mark.parametrize("case, kwargs", [
    ("wrong secret", {"secret": "another-secret"}),
    ("missing signature", {"signature": ""}),
    ("garbled signature", {"signature": "not base64 at all"}),
])
def test_shopify_bad_or_missing_signature_is_refused_with_nothing_stored(client, session, clock, shop_keys,
                                                                        case, kwargs):
    subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    response = shopify(client, shop_keys.shop, "checkouts/create", fixture("shopify/checkouts_create.json"), **kwargs)
    assert response.status_code == 401, case
    assert response.json["error"]["code"] == "bad_signature"
    assert counts(session) == {"Checkout": 0, "Order": 0, "Shipment": 0, "Product": 0, "WebhookReceipt": 0, "Push": 0}


def test_shopify_signature_covers_the_raw_bytes(client, session, shop_keys):
    raw = json.dumps(fixture("shopify/checkouts_create.json"), indent=4).encode()
    tampered = raw.replace(b"409.94", b"1.00")
    response = shopify(client, shop_keys.shop, "checkouts/create", tampered, signature=b64hmac(SECRET, raw))
    assert response.status_code == 401 and counts(session)["Checkout"] == 0


def test_shopify_replayed_webhook_id_answers_200_and_changes_nothing(client, session, clock, shop_keys):
    subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-shopify-01", cart_token=CART_TOKEN)
    body = fixture("shopify/checkouts_create.json")
    assert shopify(client, shop_keys.shop, "checkouts/create", body).json["duplicate"] is False
    before = counts(session)
    changed = {**body, "total_price": "1.00"}
    again = shopify(client, shop_keys.shop, "checkouts/create", changed)
    assert again.status_code == 200 and again.json == {"received": True, "duplicate": True}
    assert counts(session) == before
    assert session.scalars(sa.select(Checkout)).one().total == Decimal("409.94")


@pytest.mark.parametrize("domain", ["someone-else.myshopify.com", None])
def test_shopify_delivery_for_another_shop_domain_is_refused(client, session, shop_keys, domain):
    response = shopify(client, shop_keys.shop, "orders/paid", fixture("shopify/orders_paid.json"), domain=domain)
    assert response.status_code == 401 and response.json["error"]["code"] == "wrong_shop_domain"
    assert counts(session)["Order"] == 0 and counts(session)["WebhookReceipt"] == 0


def test_shopify_unknown_topic_is_acknowledged_and_ignored(client, session, shop_keys):
    response = shopify(client, shop_keys.shop, "customers/create", {"id": 1, "email": "a@example.com"})
    assert response.status_code == 200 and response.json["ignored"].startswith("topic 'customers/create'")
    assert counts(session)["WebhookReceipt"] == 0


def test_a_shop_without_a_platform_secret_refuses_platform_deliveries(client, session, shop_keys):
    shop = session.get(Shop, shop_keys.shop.id)
    shop.platform_secret = None
    session.commit()
    response = shopify(client, shop_keys.shop, "orders/paid", fixture("shopify/orders_paid.json"))
    assert response.status_code == 401 and response.json["error"]["code"] == "no_platform_secret"


def test_the_app_proxy_serves_the_worker_only_with_a_good_signature(client, app, shop_keys):
    params = {"shop": DOMAIN, "logged_in_customer_id": "", "path_prefix": "/apps/pushcart",
              "timestamp": "1317327555"}
    signature = hmac.new(SECRET.encode(), b"logged_in_customer_id=path_prefix=/apps/pushcartshop="
                         + DOMAIN.encode() + b"timestamp=1317327555", hashlib.sha256).hexdigest()
    path = f"/v1/integrations/shopify/{shop_keys.shop.public_key}/proxy/pushcart-sw.js"
    good = client.get(f"{path}?{urlencode({**params, 'signature': signature})}")
    assert good.status_code == 200 and good.mimetype == "text/javascript"
    assert good.get_data(as_text=True) == f'importScripts("{app.config["PUBLIC_URL"]}/sw.js");\n'
    for bad in ({**params, "signature": "0" * 64}, params, {**params, "timestamp": "1317327556", "signature": signature}):
        refused = client.get(f"{path}?{urlencode(bad)}")
        assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_signature"
    other = {**params, "shop": "someone-else.myshopify.com"}
    refused = client.get(f"{path}?{urlencode({**other, 'signature': proxy_signature(SECRET, MultiDict(other))})}")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "wrong_shop_domain"


# -- WooCommerce -------------------------------------------------------------------------------


def test_woocommerce_pending_order_is_a_checkout_for_the_visitor_in_its_meta(client, session, clock, woo_keys):
    visitor = subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-woo-visitor-1")
    response = woo(client, woo_keys.shop, "order.created", fixture("woocommerce/order_created_pending.json"))
    assert response.status_code == 200, response.json
    session.expire_all()
    checkout = session.scalars(sa.select(Checkout)).one()
    assert (checkout.token, checkout.visitor_id, checkout.total, checkout.item_count) == (
        "wc_order_58d2d042d1d", visitor.id, Decimal("29.35"), 3)
    assert checkout.checkout_url.startswith("https://example.com/checkout/order-pay/727/")
    assert checkout.items[1]["title"] == "Ship Your Idea \u2013 Color: Black, Size: M Test"
    [step] = pushes(session, kind="checkout_recovery")
    assert step.url == checkout.checkout_url
    assert session.get(Visitor, visitor.id).first_name == "John"


def test_woocommerce_processing_order_is_paid_and_stops_the_series(client, session, clock, woo_keys):
    visitor = subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-woo-visitor-1")
    woo(client, woo_keys.shop, "order.created", fixture("woocommerce/order_created_pending.json"))
    clock.advance(minutes=30)
    response = woo(client, woo_keys.shop, "order.updated", fixture("woocommerce/order_updated_processing.json"),
                   delivery_id="d-2")
    assert response.status_code == 200, response.json
    session.expire_all()
    order = session.scalars(sa.select(Order)).one()
    assert (order.order_ref, order.visitor_id, order.total, order.email) == (
        "727", visitor.id, Decimal("29.35"), "john.doe@example.com")
    assert session.scalars(sa.select(Checkout)).one().paid_at == clock.now()
    [step] = pushes(session, kind="checkout_recovery")
    assert step.status == PushStatus.CANCELLED.value
    # "completed" later: the same order, recorded once.
    completed = {**fixture("woocommerce/order_updated_processing.json"), "status": "completed"}
    assert woo(client, woo_keys.shop, "order.updated", completed, delivery_id="d-3").status_code == 200
    assert counts(session)["Order"] == 1


@pytest.mark.parametrize("meta", [[], [{"id": 1, "key": "_pushcart_visitor_id", "value": "not a visitor id!"}]])
def test_woocommerce_order_without_meta_finds_the_visitor_by_billing_email(client, session, clock, woo_keys, meta):
    visitor = subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-woo-other", email="john.doe@example.com")
    body = {**fixture("woocommerce/order_updated_processing.json"), "meta_data": meta}
    assert woo(client, woo_keys.shop, "order.updated", body).status_code == 200
    session.expire_all()
    assert session.scalars(sa.select(Order)).one().visitor_id == visitor.id


@pytest.mark.parametrize("status", ["cancelled", "refunded", "checkout-draft"])
def test_woocommerce_other_statuses_are_ignored(client, session, woo_keys, status):
    body = {**fixture("woocommerce/order_created_pending.json"), "status": status}
    response = woo(client, woo_keys.shop, "order.updated", body)
    assert response.status_code == 200 and "ignored" in response.json
    assert counts(session)["Checkout"] == 0 and counts(session)["Order"] == 0


def test_woocommerce_ping_gets_200_and_stores_nothing(client, session, woo_keys):
    response = client.post(f"/v1/integrations/woocommerce/{woo_keys.shop.public_key}", data=b"webhook_id=12",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.json == {"received": True, "ping": True}
    assert counts(session) == {"Checkout": 0, "Order": 0, "Shipment": 0, "Product": 0, "WebhookReceipt": 0, "Push": 0}
    # Anything else unsigned is refused.
    refused = client.post(f"/v1/integrations/woocommerce/{woo_keys.shop.public_key}", data=b"webhook_id=12&x=1",
                          content_type="application/x-www-form-urlencoded")
    assert refused.status_code == 401


@pytest.mark.parametrize("kwargs, code", [
    ({"secret": "another-secret"}, "bad_signature"),
    ({"signature": ""}, "bad_signature"),
    ({"source": "https://evil.example/"}, "wrong_shop_domain"),
    ({"source": None}, "wrong_shop_domain"),
])
def test_woocommerce_bad_deliveries_are_refused_with_nothing_stored(client, session, clock, woo_keys, kwargs, code):
    subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-woo-visitor-1")
    response = woo(client, woo_keys.shop, "order.created", fixture("woocommerce/order_created_pending.json"), **kwargs)
    assert response.status_code == 401 and response.json["error"]["code"] == code
    assert counts(session) == {"Checkout": 0, "Order": 0, "Shipment": 0, "Product": 0, "WebhookReceipt": 0, "Push": 0}


def test_woocommerce_replayed_delivery_changes_nothing(client, session, clock, woo_keys):
    subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-woo-visitor-1")
    body = fixture("woocommerce/order_created_pending.json")
    assert woo(client, woo_keys.shop, "order.created", body).json["duplicate"] is False
    before = counts(session)
    again = woo(client, woo_keys.shop, "order.created", {**body, "total": "1.00"})
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert counts(session) == before and session.scalars(sa.select(Checkout)).one().total == Decimal("29.35")


def test_woocommerce_product_update_upserts_price_and_stock(client, session, clock, woo_keys, monkeypatch):
    seen = []
    monkeypatch.setattr(hooks, "on_product_updated", lambda s, shop, before, after, now: seen.append((before, after)))
    body = fixture("woocommerce/product_updated.json")
    assert woo(client, woo_keys.shop, "product.updated", body).status_code == 200
    session.expire_all()
    product = session.scalars(sa.select(Product)).one()
    assert (product.product_ref, product.variant_ref, product.title, product.price, product.available,
            product.inventory) == ("794", "", "Premium Quality", Decimal("21.99"), False, 0)
    assert product.url == "https://example.com/product/premium-quality-19/"
    restocked = {**body, "stock_status": "instock", "stock_quantity": 12, "sale_price": "17.99", "price": "17.99",
                 "variations": [{"id": 795, "price": "19.99", "stock_status": "outofstock", "stock_quantity": 0,
                                 "attributes": [{"name": "Size", "option": "XL"}]}]}
    assert woo(client, woo_keys.shop, "product.updated", restocked, delivery_id="d-2").status_code == 200
    (before, after), (new_before, variation) = seen[1], seen[2]
    assert (before.available, before.price, after.available, after.price, after.inventory) == (
        False, Decimal("21.99"), True, Decimal("17.99"), 12)
    assert new_before is None and (variation.variant_ref, variation.title, variation.available) == (
        "795", "Premium Quality - XL", False)


# -- the native products topic -----------------------------------------------------------------


def native(client, new, topic, body, clock):
    data = json.dumps(body).encode()
    return client.post(f"/v1/webhooks/{new.shop.public_key}/{topic}", data=data, content_type="application/json",
                       headers={"X-Pushcart-Signature": sign(new.secret, int(clock.now().timestamp()), data)})


def test_native_products_topic_upserts_and_reports_before_and_after(client, session, clock, monkeypatch):
    new = make_shop(session, clock.now())
    session.commit()
    seen = []
    monkeypatch.setattr(hooks, "on_product_updated", lambda s, shop, before, after, now: seen.append((before, after)))
    body = {"id": "p-1", "product_id": "sku-7", "variant_id": "M", "title": "Linen Shirt", "price": "49.00",
            "currency": "usd", "available": False, "inventory": 0, "url": "https://shop.example/p/linen"}
    assert native(client, new, "products", body, clock).status_code == 200
    assert native(client, new, "products", {**body, "id": "p-2", "available": True, "inventory": 4},
                  clock).status_code == 200
    assert native(client, new, "products", {**body, "id": "p-2", "price": "1.00"}, clock).json["duplicate"] is True
    session.expire_all()
    product = session.scalars(sa.select(Product)).one()
    assert (product.variant_ref, product.currency, product.available, product.inventory, product.price) == (
        "M", "USD", True, 4, Decimal("49.00"))
    assert seen[0][0] is None and (seen[1][0].available, seen[1][1].available) == (False, True)
    bad = native(client, new, "products", {**body, "id": "p-3", "price": "-1"}, clock)
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_field"
    unsigned = client.post(f"/v1/webhooks/{new.shop.public_key}/products", json=body)
    assert unsigned.status_code == 401


# -- settings ----------------------------------------------------------------------------------


def test_platform_settings_are_saved_and_the_secret_is_never_shown(client, session, clock):
    new = make_shop(session, clock.now())
    session.commit()
    auth = {"Authorization": f"Bearer {new.admin_token}"}
    first = client.get("/v1/admin/settings", headers=auth).get_json()
    assert (first["platform"], first["platform_domain"], first["platform_secret_set"]) == ("custom", None, False)
    response = client.put("/v1/admin/settings", headers=auth, json={
        "platform": "shopify", "platform_domain": "https://Linen-Co.myshopify.com/", "platform_secret": SECRET,
        "sw_path": "/apps/pushcart/pushcart-sw.js"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["platform"], body["platform_domain"], body["platform_secret_set"]) == ("shopify", DOMAIN, True)
    assert body["sw_path"] == "/apps/pushcart/pushcart-sw.js"
    assert SECRET not in json.dumps(body) and SECRET not in client.get("/v1/admin/settings", headers=auth).get_data(as_text=True)
    # What GET shows of the secret is accepted back and changes nothing.
    again = client.put("/v1/admin/settings", headers=auth, json={"platform": body["platform"],
                       "platform_domain": body["platform_domain"], "platform_secret_set": True})
    assert again.status_code == 200 and again.get_json()["platform_secret_set"] is True
    session.expire_all()
    assert session.get(Shop, new.shop.id).platform_secret == SECRET
    for bad in ({"platform": "magento"}, {"platform_domain": "shop.example"},
                {"platform": "woocommerce", "platform_domain": "javascript:alert(1)"}):
        assert client.put("/v1/admin/settings", headers=auth, json=bad).status_code == 422, bad
    cleared = client.put("/v1/admin/settings", headers=auth, json={"platform_secret": ""}).get_json()
    assert cleared["platform_secret_set"] is False


def test_dashboard_settings_and_install_pages_show_the_platform(client, session, clock):
    new = make_shop(session, clock.now(), name="Acme")
    session.commit()
    csrf = log_in(client, new.admin_token)
    form = {"csrf_token": csrf, "name": "Acme", "origins": ORIGIN, "sw_path": "/apps/pushcart/pushcart-sw.js",
            "prompt_text": "Notify me?", "prompt_color": "#112233", "after_pageviews": "2", "after_seconds": "0",
            "dismiss_days": "7", "frequency_cap_per_24h": "3", "attribution_hours": "72",
            "platform": "woocommerce", "platform_domain": SITE, "platform_secret": "wc-secret-1"}
    assert client.post("/admin/settings", data=form).status_code == 302
    session.expire_all()
    shop = session.get(Shop, new.shop.id)
    assert (shop.platform, shop.platform_domain, shop.platform_secret) == ("woocommerce", SITE, "wc-secret-1")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "wc-secret-1" not in page and 'id="platform-secret-state">set<' in page
    # An empty secret field keeps the secret; without CSRF nothing is saved.
    assert client.post("/admin/settings", data={**form, "platform_secret": ""}).status_code == 302
    session.expire_all()
    assert session.get(Shop, new.shop.id).platform_secret == "wc-secret-1"
    assert client.post("/admin/settings", data={**form, "csrf_token": "x", "platform": "shopify"}).status_code == 400
    install = client.get("/admin/install").get_data(as_text=True)
    assert '<details id="install-woocommerce" open>' in install and '<details id="install-shopify">' in install
    assert f"http://pushcart.test/v1/integrations/woocommerce/{new.shop.public_key}" in install
    assert f"http://pushcart.test/v1/integrations/shopify/{new.shop.public_key}/proxy" in install
    assert "orders/paid" in install and "product.updated" in install
    assert "&lt;script src=" in install and "wc-secret-1" not in install


# -- limits ------------------------------------------------------------------------------------


def test_platform_bodies_may_be_larger_than_collect_bodies(client, session, shop_keys, app):
    body = {**fixture("shopify/products_update.json"), "body_html": "<p>" + "Lorem ipsum. " * 12_000 + "</p>"}
    raw = json.dumps(body).encode()
    assert app.config["MAX_CONTENT_LENGTH"] < len(raw) < app.config["PLATFORM_MAX_CONTENT_LENGTH"]
    assert shopify(client, shop_keys.shop, "products/update", raw).status_code == 200
    assert counts(session)["Product"] == 3
    huge = json.dumps({**body, "body_html": "x" * app.config["PLATFORM_MAX_CONTENT_LENGTH"]}).encode()
    assert shopify(client, shop_keys.shop, "products/update", huge, webhook_id="wh-2").status_code == 413


def test_platform_deliveries_count_against_the_shops_webhook_limit(app_config, make_app, clock):
    app = make_app({**app_config, "RATELIMIT_WEBHOOKS_PER_SHOP": "2/minute"})
    client = app.test_client()
    with get_db(app).sessionmaker() as s:
        new = make_shop(s, clock.now(), origins=[ORIGIN])
        new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = "shopify", DOMAIN, SECRET
        s.commit()
        shop = new.shop
        statuses = [shopify(client, shop, "customers/create", {"id": i}, webhook_id=f"wh-{i}").status_code
                    for i in range(3)]
    assert statuses == [200, 200, 429]


def test_cart_update_through_the_events_journal_keeps_the_cart_token(app_config, make_app, clock, tmp_path):
    japp = make_app({**app_config, "COLLECT_JOURNAL": "on", "COLLECT_JOURNAL_DIR": str(tmp_path / "journal")})
    with get_db(japp).sessionmaker() as s:
        new = make_shop(s, clock.now(), origins=[ORIGIN])
        s.commit()
        send_cart_update(japp.test_client(), new.shop, "v-journal-01", f"{CART_TOKEN}?key=abc")
        assert event_journal(japp).drainer.flush(10)
        s.expire_all()
        assert s.scalars(sa.select(Visitor.cart_token)).one() == CART_TOKEN


# -- price drops across an unusable price --------------------------------------------------------


def follow(client, shop, visitor_key, product_id, variant_id=None):
    """The visitor's "notify me" on a price drop, posted as the widget does."""
    body = {"visitor_id": visitor_key, "product_id": product_id, "kinds": ["price_drop"]}
    if variant_id is not None:
        body["variant_id"] = variant_id
    response = client.post(f"/v1/shops/{shop.public_key}/interests", json=body, headers={"Origin": ORIGIN})
    assert response.status_code == 201, response.json


def test_shopify_price_drop_after_an_unusable_price_is_measured_from_the_price_seen(client, session, clock,
                                                                                   shop_keys):
    subscribed_visitor(session, shop_keys.shop, clock, visitor_key="v-drop-1")
    body = fixture("shopify/products_update.json")
    body["variants"] = [{**body["variants"][0], "price": "100.00"}]
    assert shopify(client, shop_keys.shop, "products/update", body, webhook_id="p-1").status_code == 200
    follow(client, shop_keys.shop, "v-drop-1", "632910392", "808950810")  # saw 100.00
    for n, price in enumerate(("-5.00", "80.00"), start=2):
        body["variants"][0]["price"] = price
        clock.advance(minutes=5)
        assert shopify(client, shop_keys.shop, "products/update", body, webhook_id=f"p-{n}").status_code == 200
    [push] = pushes(session, kind="price_drop")
    assert "$80.00" in push.body and "$100.00" in push.body, push.body


def test_woocommerce_price_drop_after_an_unusable_price_is_measured_from_the_price_seen(client, session, clock,
                                                                                       woo_keys):
    subscribed_visitor(session, woo_keys.shop, clock, visitor_key="v-drop-2")
    body = {**fixture("woocommerce/product_updated.json"), "stock_status": "instock", "stock_quantity": 5,
            "price": "100.00", "sale_price": "", "regular_price": "100.00"}
    assert woo(client, woo_keys.shop, "product.updated", body, delivery_id="p-1").status_code == 200
    follow(client, woo_keys.shop, "v-drop-2", "794")  # saw 100.00
    for n, (price, regular) in enumerate((("-5.00", "-5.00"), ("80.00", "80.00")), start=2):
        clock.advance(minutes=5)
        changed = {**body, "price": price, "regular_price": regular}
        assert woo(client, woo_keys.shop, "product.updated", changed, delivery_id=f"p-{n}").status_code == 200
    [push] = pushes(session, kind="price_drop")
    assert "$80.00" in push.body and "$100.00" in push.body, push.body
