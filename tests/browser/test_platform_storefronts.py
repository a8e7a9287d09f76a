"""A visitor carts on a page shaped like the platform's, in a real headless Chromium; then the
platform's checkout webhook arrives, the recovery push is delivered (web-push-testing decrypts
it), and the platform's paid-order webhook stops the series and is attributed.

Shopify and WordPress are outside this machine, so the shop's side is a small stand-in served
by the app under test: a Shopify theme page with the script tag and Shopify's ``/cart.js``; a
WooCommerce page with the script tag, the companion plugin's own ``pushcart-wc.js`` and the
track call its PHP prints after an add-to-cart. Everything of Pushcart's is the real thing: the
served widget, the collect API, the webhooks, the planner, the dispatcher and the sender.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Blueprint, Response

from server.core.models import Visitor
from tests.browser.chromium import LiveServer, wait_for
from tests.browser.test_storefront import event_types, post_from_page, status, widget_ready
from tests.factories import make_shop
from tests.integration.webhooks.test_platform_webhooks import CART_TOKEN, DOMAIN, SECRET, SITE, fixture, shopify, woo
from tests.integration.webhooks.test_platforms_e2e import recovery_flow, set_series
from tests.integration.planning.test_presets_e2e import dispatch

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PLUGIN_JS = ROOT / "integrations" / "woocommerce" / "pushcart-for-woocommerce" / "assets" / "pushcart-wc.js"

# What Shopify's /cart.js answers for a cart of two iPod Nanos (prices in cents; the token as
# the cart cookie holds it, with its ?key= part).
SHOPIFY_CART = {"token": f"{CART_TOKEN}?key=0f4e2d", "item_count": 2, "total_price": 39800, "currency": "USD",
                "items": [{"id": 49148385, "product_id": 632910392, "variant_id": 49148385,
                           "title": "IPod Nano - 8GB", "price": 19900, "quantity": 2,
                           "url": "/products/ipod-nano?variant=49148385"}]}


def theme(public_url: str, public_key: str, body: str = "") -> str:
    return (f"<!doctype html><html><head><title>Linen &amp; Co</title>"
            f'<script src="{public_url}/widget.js" data-shop="{public_key}" async></script>'
            f"</head><body><h1>Linen &amp; Co</h1>{body}</body></html>")


def platform_shop(app, session, clock, server: LiveServer, platform: str, domain: str):
    app.config["PUBLIC_URL"] = server.base
    app.config["PUSHCART_INSECURE_ENDPOINTS"] = True  # web-push-testing listens on localhost
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[server.base])
    new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = platform, domain, SECRET
    session.commit()
    return new


@pytest.fixture
def live(app) -> Iterator[tuple[LiveServer, Blueprint]]:
    """The app on a real port, with a blueprint the test fills with the platform's pages."""
    pages = Blueprint("platform_stand_in", __name__)
    server = LiveServer(app)
    yield server, pages
    server.stop()


def subscribe_from_page(driver, base, public_key, web_push_testing, vapid_public_key, visitor_key):
    """The subscription a browser would make, from web-push-testing, posted from the shop's page."""
    wpt = web_push_testing.subscribe(vapid_public_key)
    posted = post_from_page(driver, f"{base}/v1/shops/{public_key}/subscriptions", {
        "visitor_id": visitor_key, "timezone": "UTC",
        "subscription": {"endpoint": wpt["endpoint"], "expirationTime": None, "keys": wpt["keys"]}})
    assert posted["status"] == 201, posted
    return wpt["clientHash"]


def test_shopify_theme_cart_checkout_webhook_push_and_paid_order(app, session, clock, live, browser,
                                                                 web_push_testing):
    from server.delivery.push.vapid import get_vapid, public_key_b64

    server, pages = live
    new = platform_shop(app, session, clock, server, "shopify", DOMAIN)
    key = new.shop.public_key

    @pages.get("/shopify/products/ipod-nano")
    def product_page() -> str:
        return theme(app.config["PUBLIC_URL"], key, "<button>Add to cart</button>")

    @pages.get("/cart.js")
    def cart_js() -> Response:
        return Response(json.dumps(SHOPIFY_CART), mimetype="application/json")

    app.register_blueprint(pages)
    server.start()
    client = app.test_client()
    set_series(client, new)

    driver = browser
    driver.get(server.base + "/shopify/products/ipod-nano")
    widget_ready(driver)
    visitor_key = status(driver)["visitor_id"]
    # The widget read the theme's cart from /cart.js (the config says "shopify") and linked it.
    wait_for(lambda: "cart_update" in event_types(session, visitor_key), message="the cart_update event")
    session.expire_all()
    visitor = session.scalars(sa.select(Visitor).where(Visitor.visitor_key == visitor_key)).one()
    assert visitor.cart_token == CART_TOKEN  # without the ?key= part, as checkouts name it
    inbox = subscribe_from_page(driver, server.base, key, web_push_testing, public_key_b64(get_vapid(app)),
                                visitor_key)
    t0 = clock.now()
    assert dispatch(app, t0)["sent"] == 1  # the welcome

    started = clock.set(t0 + timedelta(minutes=2)) or clock.now()
    checkout = fixture("shopify/checkouts_create.json")  # cart_token: the theme's cart
    assert shopify(client, new.shop, "checkouts/create", checkout, webhook_id="b-1").status_code == 200

    def pay():
        answer = shopify(client, new.shop, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="b-2")
        assert answer.status_code == 200, answer.json

    stats = recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started,
                          checkout["abandoned_checkout_url"], "Your order at Linen & Co is almost done",
                          "Finish checking out your 2 item(s) ($409.94) before they sell out.", pay)
    assert (stats["by_kind"]["checkout_recovery"]["orders"], stats["by_kind"]["checkout_recovery"]["gmv"]) == \
        (1, "409.94")


def test_woocommerce_page_plugin_cookie_order_webhooks_push_and_payment(app, session, clock, live, browser,
                                                                         web_push_testing):
    from server.delivery.push.vapid import get_vapid, public_key_b64

    server, pages = live
    new = platform_shop(app, session, clock, server, "woocommerce", SITE)
    key = new.shop.public_key
    added = {"product": {"id": "71", "title": "Linen Shirt", "price": "9.95", "currency": "USD"},
             "cart": {"token": "c0ffee00c0ffee00c0ffee00c0ffee00", "total": "29.35", "currency": "USD",
                      "item_count": 3, "checkout_url": server.base + "/checkout/"}}

    @pages.get("/wp-content/plugins/pushcart-for-woocommerce/assets/pushcart-wc.js")
    def plugin_js() -> Response:
        return Response(PLUGIN_JS.read_text(encoding="utf-8"), mimetype="text/javascript")

    @pages.get("/product/linen-shirt/")
    def product_page() -> Response:
        # What the plugin prints: the widget tag, its helper, the queued track call of the add-to-cart
        # (an inline script: the shop's page is not under Pushcart's own CSP).
        track = json.dumps(["track", "add_to_cart", added]).replace("</", "<\\/")
        page = theme(app.config["PUBLIC_URL"], key,
                     f"<script>window.pushcart=window.pushcart||[];pushcart.push({track});</script>"
                     '<script src="/wp-content/plugins/pushcart-for-woocommerce/assets/pushcart-wc.js" defer>'
                     "</script>")
        return Response(page, mimetype="text/html",
                        headers={"Content-Security-Policy": "script-src 'self' 'unsafe-inline'"})

    app.register_blueprint(pages)
    server.start()
    client = app.test_client()
    set_series(client, new)

    driver = browser
    driver.get(server.base + "/product/linen-shirt/")
    widget_ready(driver)
    visitor_key = status(driver)["visitor_id"]
    wait_for(lambda: "add_to_cart" in event_types(session, visitor_key), message="the add_to_cart event")
    # The plugin's helper put the widget's visitor id into the cookie its PHP stores on the order.
    cookie = wait_for(lambda: driver.get_cookie("pushcart_vid"), message="the pushcart_vid cookie")
    assert cookie["value"] == visitor_key and cookie["sameSite"] == "Lax"
    inbox = subscribe_from_page(driver, server.base, key, web_push_testing, public_key_b64(get_vapid(app)),
                                visitor_key)
    t0 = clock.now()
    assert dispatch(app, t0)["sent"] == 1  # the welcome

    def with_visitor(order: dict) -> dict:
        # As the plugin's woocommerce_checkout_create_order hook stores the cookie's value.
        meta = [m for m in order["meta_data"] if m["key"] != "_pushcart_visitor_id"]
        return {**order, "meta_data": meta + [{"id": 1, "key": "_pushcart_visitor_id", "value": cookie["value"]}]}

    started = clock.set(t0 + timedelta(minutes=2)) or clock.now()
    pending = with_visitor(fixture("woocommerce/order_created_pending.json"))
    assert woo(client, new.shop, "order.created", pending, delivery_id="b-1").status_code == 200

    def pay():
        paid = with_visitor(fixture("woocommerce/order_updated_processing.json"))
        answer = woo(client, new.shop, "order.updated", paid, delivery_id="b-2")
        assert answer.status_code == 200, answer.json

    stats = recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started,
                          pending["payment_url"], "Your order at Linen & Co is almost done",
                          "Finish checking out your 3 item(s) ($29.35) before they sell out.", pay)
    assert (stats["by_kind"]["checkout_recovery"]["orders"], stats["by_kind"]["checkout_recovery"]["gmv"]) == \
        (1, "29.35")

