"""A Shopify shop on the operator's app (integrations/shopify), in a real headless Chromium: the
storefront carries what the app embed renders (the block rendered by LiquidJS with the merchant's
two settings), the worker comes through a stand-in of Shopify's app proxy that signs with the
app's client secret, and the checkout and the paid order arrive on the app's one webhook URL.
Then the Install page with the app's steps is photographed.

Shopify is outside this machine: the stand-in does what Shopify does (sign the proxied request,
forward it, send the webhooks); everything of Pushcart's is the real thing.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from server.core.models import Visitor
from server.webhooks.shopify import proxy_signature
from tests.browser.chromium import LiveServer, wait_for
from tests.browser.test_dashboard_pages import by_css, log_in
from tests.browser.test_platform_storefronts import SHOPIFY_CART, subscribe_from_page
from tests.browser.test_storefront import event_types, screenshot_dir, status, widget_ready
from tests.factories import make_shop
from tests.integration.webhooks.test_platform_webhooks import CART_TOKEN, DOMAIN, fixture
from tests.integration.webhooks.test_platforms_e2e import recovery_flow, set_series
from tests.integration.planning.test_presets_e2e import dispatch
from tests.integration.webhooks.test_shopify_app import CLIENT_SECRET, app_delivery

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "integration" / "webhooks" / "shopify_embed_harness.cjs"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SHOPIFY_CLIENT_SECRET": CLIENT_SECRET}


def render_embed(settings: dict) -> str:
    """The app-embed block as Shopify would render it with these settings."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "liquidjs").is_dir():
        pytest.skip("node or node_modules/liquidjs missing: run `make node-deps`")
    done = subprocess.run([node, str(HARNESS)], input=json.dumps({"settings": settings}), capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def test_app_embed_app_proxy_and_app_webhooks_recover_a_checkout(app, session, clock, browser, web_push_testing):
    from server.delivery.push.vapid import get_vapid, public_key_b64

    server, pages = LiveServer(app), Blueprint("shopify_stand_in", __name__)
    app.config["PUBLIC_URL"] = server.base
    app.config["PUSHCART_INSECURE_ENDPOINTS"] = True  # web-push-testing listens on localhost
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[server.base])
    new.shop.platform, new.shop.platform_domain = "shopify", DOMAIN  # no platform secret: the app's key
    new.shop.sw_path = "/apps/pushcart/pushcart-sw.js"
    session.commit()
    key = new.shop.public_key
    # The merchant typed the Install page's two values into the app embed (with a trailing slash).
    embed = render_embed({"pushcart_url": server.base + "/", "shop_key": key})
    assert [line.strip() for line in embed.strip().splitlines()] == [
        '<link rel="manifest" href="/apps/pushcart/manifest.webmanifest">',
        f'<script src="{server.base}/widget.js" data-shop="{key}" defer></script>']

    @pages.get("/products/ipod-nano")
    def product_page() -> str:
        # An app embed with "target": "head" is rendered just before </head>.
        return (f"<!doctype html><html><head><title>Linen &amp; Co</title>{embed}</head><body><h1>Linen &amp; Co</h1>"
                "<button>Add to cart</button></body></html>")

    @pages.get("/cart.js")
    def cart_js() -> Response:
        return Response(json.dumps(SHOPIFY_CART), mimetype="application/json")

    @pages.get("/apps/pushcart/<path:rest>")
    def app_proxy(rest: str) -> Response:
        # Shopify's app proxy: the rest of the path is appended to the proxy URL of
        # shopify.app.toml, with the shop and a signature made with the app's client secret.
        params = {**request.args.to_dict(), "shop": DOMAIN, "logged_in_customer_id": "",
                  "path_prefix": "/apps/pushcart", "timestamp": "1796619600"}
        query = urlencode({**params, "signature": proxy_signature(CLIENT_SECRET, MultiDict(params))})
        with urllib.request.urlopen(f"{server.base}/v1/integrations/shopify/proxy/{rest}?{query}", timeout=10) as r:
            return Response(r.read(), mimetype=r.headers.get_content_type())

    app.register_blueprint(pages)
    server.start()
    try:
        client = app.test_client()
        set_series(client, new)
        driver = browser
        driver.get(server.base + "/products/ipod-nano")
        widget_ready(driver)
        visitor_key = status(driver)["visitor_id"]
        wait_for(lambda: "cart_update" in event_types(session, visitor_key), message="the cart_update event")
        session.expire_all()
        assert session.scalars(sa.select(Visitor).where(Visitor.visitor_key == visitor_key)).one().cart_token == \
            CART_TOKEN
        # The worker file on the shop's own origin, through the proxy.
        worker = driver.execute_async_script(
            "fetch('/apps/pushcart/pushcart-sw.js').then(r => r.text()).then(arguments[0])")
        assert worker == f'importScripts("{server.base}/sw.js");\n'
        # Chromium found the embed's manifest link in the head and read the manifest through the proxy.
        manifest = driver.execute_cdp_cmd("Page.getAppManifest", {})
        assert manifest["url"] == server.base + "/apps/pushcart/manifest.webmanifest" and not manifest["errors"]
        assert {k: v for k, v in json.loads(manifest["data"]).items() if k in ("name", "display", "start_url")} == {
            "name": "Linen & Co", "display": "standalone", "start_url": "/"}
        inbox = subscribe_from_page(driver, server.base, key, web_push_testing, public_key_b64(get_vapid(app)),
                                    visitor_key)
        t0 = clock.now()
        assert dispatch(app, t0)["sent"] == 1  # the welcome

        started = clock.set(t0 + timedelta(minutes=2)) or clock.now()
        checkout = fixture("shopify/checkouts_create.json")
        assert app_delivery(client, "checkouts/create", checkout, webhook_id="app-1").status_code == 200

        def pay():
            answer = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="app-2")
            assert answer.status_code == 200, answer.json

        stats = recovery_flow(app, client, session, clock, web_push_testing, inbox, new, started,
                              checkout["abandoned_checkout_url"], "Your order at Linen & Co is almost done",
                              "Finish checking out your 2 item(s) ($409.94) before they sell out.", pay)
        assert stats["by_kind"]["checkout_recovery"]["orders"] == 1

        # The Install page a merchant on the app reads.
        driver.delete_all_cookies()
        log_in(driver, server.base, new.admin_token)
        driver.get(server.base + "/admin/install")
        assert by_css(driver, "#shopify-embed-key").text == key
        assert by_css(driver, "#shopify-embed-url").text == server.base
        driver.set_window_size(1280, 1400)
        driver.execute_script("document.getElementById('install-shopify').scrollIntoView()")
        by_css(driver, "#install-shopify").screenshot(str(screenshot_dir() / "install-shopify-app.png"))
    finally:
        server.stop()
