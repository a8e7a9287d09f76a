"""The Install page's manifest check in a real headless Chromium, for a shop whose home page links
no web app manifest: on WooCommerce it names the WordPress plugin's update and setting, on
Shopify with the operator's app the app embed's option, by hand the app proxy's manifest (issue 26).

The shop is a stand-in on an origin of its own (another port of 127.0.0.1) with a home page that
links no manifest, as most WordPress and Shopify themes do. Screenshots of the answer at 1280 and
390 px wide are saved under ``$PUSHCART_SCREENSHOTS`` when set, else under the test's temporary
directory; axe-core finds no serious violation on the page with the answer.
"""
from __future__ import annotations

import pytest
from flask import Flask, Response

from tests.browser.chromium import LiveServer, wait_for
from tests.browser.test_connect_pages import LAPTOP, PHONE, accessible
from tests.browser.test_dashboard_pages import by_css, fits_width, log_in, shots  # noqa: F401 (a fixture)
from tests.factories import make_shop

pytestmark = pytest.mark.browser


@pytest.fixture
def shop_origin():
    """The shop's home page, without a manifest link, on an origin of its own."""
    site = Flask("shop_without_manifest")

    @site.get("/")
    def home() -> Response:
        return Response("<!doctype html><html><head><title>Linen &amp; Co</title></head>"
                        "<body><h1>Linen &amp; Co</h1></body></html>", mimetype="text/html")

    server = LiveServer(site).start()
    yield server.base
    server.stop()


@pytest.mark.parametrize("platform, shopify_app, says", [
    ("woocommerce", False, 'The Pushcart plugin for WordPress links one from version 0.3.0: update the plugin'),
    ("shopify", True, 'App embeds → Pushcart, turn on "Link a web app manifest"'),
    ("shopify", False, 'add <link rel="manifest" href="/apps/pushcart/manifest.webmanifest"> inside <head>'),
])
def test_the_manifest_check_names_what_the_platform_integration_offers(
        app, browser, session, clock, shop_origin, shots, platform, shopify_app, says):
    from selenium.webdriver.support.select import Select

    app.config["SHOPIFY_CLIENT_SECRET"] = "shpss_operator_app" if shopify_app else None
    server = LiveServer(app).start()
    try:
        app.config["PUBLIC_URL"] = server.base
        new = make_shop(session, clock.now(), name="Linen & Co", origins=["https://linen.example", shop_origin])
        new.shop.platform = platform
        session.commit()
        driver = browser
        driver.set_window_size(*LAPTOP)
        log_in(driver, server.base, new.admin_token)
        driver.get(server.base + "/admin/install")
        Select(by_css(driver, "#manifest-origin")).select_by_value(shop_origin)
        by_css(driver, "#check-manifest").click()
        answer = wait_for(lambda: by_css(driver, "#manifest-result").text, message="the manifest check's answer")
        assert answer.startswith(f"✗ {shop_origin}/: the home page links no web app manifest."), answer
        assert says in answer, answer
        # The page's own platform steps say the same.
        steps = by_css(driver, f"#install-{platform}").text
        assert ("Link a web app manifest" in steps) == (platform == "shopify" and shopify_app), steps
        assert ("links a web app manifest where your theme has none" in steps) == (platform == "woocommerce"), steps
        name = f"install-manifest-{platform}{'-app' if shopify_app else ''}"
        for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
            driver.set_window_size(*size)
            assert fits_width(driver), f"{name} must not scroll sideways at {size[0]} px"
            driver.execute_script("document.getElementById('manifest-result').scrollIntoView({block: 'center'})")
            driver.save_screenshot(str(shots / f"{name}-{label}.png"))
        accessible(driver, f"the install page's manifest answer ({name})")
    finally:
        server.stop()
