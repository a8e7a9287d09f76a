"""Connecting a shop, in a real headless Chromium: a refused origin seen and allowed from the
dashboard, and the plugin's connect value made on the Install page and checked on the
Connection page (issue 23).

The shop is a stand-in on an origin of its own (another port of 127.0.0.1: another origin to
the browser, as a real shop's domain is), serving a page with the script tag and the one-line
worker file, as the WordPress plugin would. Pushcart runs on its own port; the plugin's call
(``POST /v1/connect``, server to server) is made from the test.

Screenshots of the Overview with the refused-origin banner, the Install page with a connect
value and the Connection page (1280 and 390 px wide) are saved under ``$PUSHCART_SCREENSHOTS``
when set, else under the test's temporary directory.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask, Response, request
from markupsafe import escape

from server.core.embed import worker_source
from server.core.models import Shop
from tests.browser.chromium import LiveServer, wait_for
from tests.browser.test_accessibility import AXE, violations
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, log_in, shots  # noqa: F401 (a fixture)
from tests.browser.test_storefront import event_types, soft_ask, status, widget_ready
from tests.factories import make_shop
from tests.integration.webhooks.test_platform_webhooks import fixture, woo

pytestmark = pytest.mark.browser

PHONE = (390, 844)
LAPTOP = (1280, 860)


@dataclass
class Sites:
    pushcart: str  # Pushcart's PUBLIC_URL
    shop: str  # the shop's own origin


@pytest.fixture
def sites(app) -> Iterator[Sites]:
    """Pushcart on one port, the shop's stand-in on another: its home page carries the script
    tag of the shop named by ``?shop=``, and it serves the worker file at the default path."""
    pushcart = LiveServer(app)
    app.config["PUBLIC_URL"] = pushcart.base
    shop_site = Flask("shop_stand_in")

    @shop_site.get("/")
    def home() -> Response:
        return Response(f'<!doctype html><html><head><title>Linen &amp; Co</title>'
                        f'<script src="{pushcart.base}/widget.js" data-shop="{escape(request.args["shop"])}" '
                        f'async></script></head><body><h1>Linen &amp; Co</h1></body></html>', mimetype="text/html")

    @shop_site.get("/pushcart-sw.js")
    def worker() -> Response:
        return Response(worker_source(pushcart.base), mimetype="application/javascript")

    shop = LiveServer(shop_site)
    pushcart.start()
    shop.start()
    yield Sites(pushcart=pushcart.base, shop=shop.base)
    shop.stop()
    pushcart.stop()


def fetch_config(driver, url: str) -> dict:
    """GET ``url`` with the page's fetch (a CORS call from the shop's origin): status 0 when refused."""
    return driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: "omit"}).then(function (r) { done({status: r.status}); },
                                                        function (e) { done({status: 0, error: String(e)}); });""",
                                       url)


def shoot(driver, folder: Path, name: str, refresh: bool = True, whole: tuple[str, ...] = ()) -> None:
    """Screenshots at laptop and phone width; neither may scroll sideways, and the elements
    ``whole`` names (values to copy) must show entirely, not in a box scrolled sideways."""
    for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
        driver.set_window_size(*size)
        if refresh and label == "phone":
            driver.refresh()
        assert fits_width(driver), f"{name} must not scroll sideways at {size[0]} px"
        for selector in whole:
            assert driver.execute_script("var e = document.querySelector(arguments[0]);"
                                         "return e.scrollWidth <= e.clientWidth;", selector), \
                f"{selector} must show whole at {size[0]} px"
        driver.save_screenshot(str(folder / f"{name}-{label}.png"))
    driver.set_window_size(*LAPTOP)


def accessible(driver, name: str) -> None:
    """No serious or critical axe-core violation on the current page (skipped without axe-core)."""
    if not AXE.is_file():
        return
    driver.execute_script(AXE.read_text())
    assert violations(driver) == [], name


def shop_origins(session, public_key: str) -> list[str]:
    session.expire_all()
    return list(session.scalars(sa.select(Shop.origins).where(Shop.public_key == public_key)).one())


def test_a_refused_origin_shows_on_the_overview_and_one_click_makes_the_widget_work(
        app, sites, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=["https://linen.example"])
    session.commit()
    key, driver = new.shop.public_key, browser
    api = f"{sites.pushcart}/v1/shops/{key}"

    # The shop's page on an origin the shop does not list: every widget call is refused.
    driver.get(f"{sites.shop}/?shop={key}")
    widget_ready(driver)
    refused = wait_for(lambda: (lambda s: s if s.get("error") else None)(status(driver)),
                       message="the widget to record its refused config call")
    assert "/config" in refused["error"] or "fetch" in refused["error"], refused
    assert fetch_config(driver, f"{api}/config")["status"] == 0, "a CORS refusal shows as a network error"
    assert soft_ask(driver) is None

    # The merchant logs in: the Overview names the origin, with the button that allows it.
    log_in(driver, sites.pushcart, new.admin_token)
    banner = by_css(driver, "#refused-origins-banner")
    assert "refused" in banner.text
    assert [c.text for c in all_css(driver, "#refused-origins-banner code")] == [sites.shop]
    shoot(driver, shots, "overview-refused-origin")
    accessible(driver, "the overview with the refused-origin banner")
    driver.get(sites.pushcart + "/admin/install")  # the Install page names it too
    assert [c.text for c in all_css(driver, "#refused-origins-banner code")] == [sites.shop]
    driver.get(sites.pushcart + "/admin/")
    by_css(driver, "#refused-origins-banner button.allow-origin").click()
    wait_for(lambda: f"{sites.shop} is now one of your shop's origins" in by_css(driver, "body").text,
             message="the flash after allowing the origin")
    assert not all_css(driver, "#refused-origins-banner")
    assert shop_origins(session, key) == sorted(["https://linen.example", sites.shop])

    # Back on the shop: the widget's calls now succeed, and the soft-ask comes on this second view.
    driver.get(f"{sites.shop}/?shop={key}")
    widget_ready(driver)
    wait_for(lambda: soft_ask(driver), message="the soft-ask once the origin is allowed")
    assert "error" not in status(driver)
    assert fetch_config(driver, f"{api}/config")["status"] == 200
    visitor_key = status(driver)["visitor_id"]
    wait_for(lambda: "page_view" in event_types(session, visitor_key), message="the page view to be stored")


def test_connect_value_from_install_registers_the_shop_and_the_connection_page_follows(
        app, sites, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=["https://linen.example"])
    session.commit()
    key, driver = new.shop.public_key, browser

    log_in(driver, sites.pushcart, new.admin_token)
    driver.get(sites.pushcart + "/admin/install")
    assert not all_css(driver, "#connect-value")
    # The plugin's step sends the merchant to this page's own connect value, not elsewhere.
    step = by_css(driver, "#install-woocommerce a.connect-value-link")
    assert step.get_attribute("href") == sites.pushcart + "/admin/install#connect"
    by_css(driver, "#make-connect-value").click()
    value = wait_for(lambda: by_css(driver, "#connect-value").text, message="the connect value")
    assert value.startswith(f"{sites.pushcart}/connect/{key}.")
    # No refresh between the two widths: it would post again, for another value.
    shoot(driver, shots, "install-connect-value", refresh=False, whole=("#connect-value",))
    accessible(driver, "the install page with a connect value")

    # The plugin's call, with the value pasted, from the shop's server.
    http = requests.Session()
    http.trust_env = False
    answer = http.post(f"{sites.pushcart}/v1/connect", timeout=10, json={
        "token": value, "origin": sites.shop, "platform": "woocommerce", "webhook_secret": "ck_woo_signing_key"})
    http.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["public_key"] == key and sites.shop in answer.json()["origins"]

    # Install's own check reaches the worker file on the origin the plugin registered.
    from selenium.webdriver.support.select import Select

    driver.get(sites.pushcart + "/admin/install")
    Select(by_css(driver, "#check-origin")).select_by_value(sites.shop)
    by_css(driver, "#check-sw").click()
    checked = wait_for(lambda: by_css(driver, "#check-result").text, message="the install check's answer")
    assert checked == f"✓ {sites.shop}/pushcart-sw.js: the service worker file is in place"

    # The Connection page: the new origin, and what is still missing, in plain words.
    driver.get(sites.pushcart + "/admin/connect/")
    assert sites.shop in by_css(driver, "#connection-origins").text
    problems = {li.get_attribute("data-problem"): li.text for li in all_css(driver, "#connection-problems li")}
    assert set(problems) == {"no_events", "no_webhook_delivery"}, problems
    assert "No event from the widget has arrived yet." in problems["no_events"]
    assert "Fix: Add the script tag" in problems["no_events"]
    assert "No WooCommerce webhook delivery has arrived yet." in problems["no_webhook_delivery"]
    # The worker check fetches the shop's worker file from the registered origin.
    by_css(driver, "#run-connection-check").click()
    wait_for(lambda: f"Worker file on {sites.shop}" in by_css(driver, "#connection-check").text,
             message="the worker check's row")
    rows = {tr.find_element("css selector", "th").text: tr.find_element("css selector", "td").text
            for tr in all_css(driver, "#connection-check tr")}
    assert rows[f"Worker file on {sites.shop}"] == "the service worker file is in place"
    # The shop's other origin does not answer from here: named, with the fix.
    unreachable = [li.text for li in all_css(driver, '#connection-problems li[data-problem="worker_unreachable"]')]
    assert len(unreachable) == 1 and "https://linen.example/pushcart-sw.js" in unreachable[0], unreachable
    shoot(driver, shots, "connection-problems", refresh=False, whole=("#webhook-secret",))
    accessible(driver, "the connection page with problems")

    # A visit to the shop: the widget's first event arrives and "no events" goes.
    driver.get(f"{sites.shop}/?shop={key}")
    widget_ready(driver)
    visitor_key = status(driver)["visitor_id"]
    wait_for(lambda: "page_view" in event_types(session, visitor_key), message="the page view to be stored")
    driver.get(sites.pushcart + "/admin/connect/")
    problems = [li.get_attribute("data-problem") for li in all_css(driver, "#connection-problems li")]
    assert problems == ["no_webhook_delivery"]
    # In the words and time format of the rest of the dashboard, not an ISO string or a code name.
    assert by_css(driver, "#connection-last-event td").text == f"{clock.now():%Y-%m-%d %H:%M} UTC"
    rows = {tr.find_element("css selector", "th").text: tr.find_element("css selector", "td").text
            for tr in all_css(driver, "#connection-check tr")}
    assert rows["Last WooCommerce webhook delivery"] == "none yet"
    shoot(driver, shots, "connection-after-event")

    # A WooCommerce webhook signed with the wrong key: named, with the fix; then one signed with
    # the secret the plugin was given: nothing left to fix.
    client = app.test_client()
    order = fixture("woocommerce/order_created_pending.json")
    wrong = woo(client, new.shop, "order.created", order, secret="not-the-shop-secret", source=sites.shop + "/")
    assert wrong.status_code == 401, wrong.json
    driver.get(sites.pushcart + "/admin/connect/")
    refused = by_css(driver, '#connection-problems li[data-problem="webhook_refused"]').text
    assert "The last WooCommerce webhook delivery" in refused and "Fix: Set each WooCommerce webhook's Secret" in refused
    webhook_row = by_css(driver, "#connection-check tr:nth-last-child(1) td").text
    assert webhook_row == (f"none yet; last refused at {clock.now():%Y-%m-%d %H:%M} UTC: "
                           "the signature does not match (bad_signature)")
    shoot(driver, shots, "connection-webhook-refused")
    right = woo(client, new.shop, "order.created", order, delivery_id="d-2", secret=answer.json()["webhook_secret"],
                source=sites.shop + "/")
    assert right.status_code == 200, right.json
    driver.get(sites.pushcart + "/admin/connect/")
    assert by_css(driver, "#connection-ok").text == "Everything Pushcart can see is in place."
    assert not all_css(driver, "#connection-problems")
