"""Issue 24's dashboard tools in a real headless Chromium: subscribing this browser as a test device
and sending it a test, the push records table with its filters and CSV link, and the shop's time
zone and currency in Settings. Screenshots at 1280 and 390 px wide go under
``$PUSHCART_SCREENSHOTS`` when set, else the test's temporary directory.

Chromium here reaches no push service (its ``pushManager.subscribe`` needs FCM), so the test puts a
web-push-testing subscription where the browser's would be: ``PushManager.prototype.subscribe``
answers with it. Everything else is the page's own code: the permission, the worker registration
on the dashboard, the post, the list, the test sent through the dispatcher and decrypted.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.core.models import Shop, TestDevice
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.browser.test_storefront import grant_notifications, registration
from tests.dashboard_seed import make_push
from tests.factories import make_shop, make_visitor
from tests.integration.planning.test_presets_e2e import dispatch

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    """web-push-testing listens on plain http at localhost."""
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def both_widths(browser, shots, name: str) -> None:
    """Screenshots at laptop and phone width; the page must not scroll sideways on either."""
    browser.set_window_size(1280, 900)
    assert fits_width(browser), f"{name} scrolls sideways at 1280 px"
    browser.save_screenshot(str(shots / f"{name}-1280.png"))
    browser.set_window_size(390, 844)
    assert fits_width(browser), f"{name} scrolls sideways at 390 px"
    browser.save_screenshot(str(shots / f"{name}-390.png"))
    browser.set_window_size(1280, 900)


def test_subscribe_this_browser_as_a_test_device_and_send_it_a_test(live, browser, session, clock, app, shots,
                                                                    web_push_testing):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings")
    assert by_css(browser, "#no-devices").text == "No test device yet."
    key = by_css(browser, "#add-device").get_attribute("data-key")
    device = web_push_testing.subscribe(key)
    grant_notifications(browser, live)
    browser.execute_script(
        "var sub = arguments[0];"
        "PushManager.prototype.subscribe = function (options) {"
        "  window.askedWithKey = btoa(String.fromCharCode.apply(null, new Uint8Array(options.applicationServerKey)));"
        "  return Promise.resolve({toJSON: function () { return sub; }}); };",
        {"endpoint": device["endpoint"], "expirationTime": None, "keys": device["keys"]})
    name = by_css(browser, "#device-name")
    name.clear()
    name.send_keys("Office laptop")
    by_css(browser, "#subscribe-device").click()
    wait_for(lambda: all_css(browser, "#device-list li"), timeout=20, message="the device in the list")
    assert "Office laptop" in by_css(browser, "#device-list").text
    assert "is a test device now" in by_css(browser, ".flash-ok").text
    assert registration(browser, live + "/admin/")["active"], "the dashboard's worker is registered"
    session.expire_all()
    assert session.scalars(sa.select(TestDevice.name)).all() == ["Office laptop"]
    both_widths(browser, shots, "settings-test-devices")

    browser.get(live + "/admin/events")
    assert "Tests go to your 1 test device" in browser.page_source
    by_css(browser, "#test-welcome button").click()
    wait_for(lambda: all_css(browser, ".flash-ok"), message="the flash after the test")
    assert "on its way to 1 test device" in by_css(browser, ".flash-ok").text
    assert dispatch(app, clock.now())["sent"] == 1
    [message] = web_push_testing.notifications(device["clientHash"])
    assert (message["kind"], message["title"]) == ("test", "Welcome to Acme Outfitters!")
    both_widths(browser, shots, "events-test-sent")

    # Notifications refused: the page says so instead of failing silently.
    browser.get(live + "/admin/settings")
    browser.execute_cdp_cmd("Browser.resetPermissions", {})
    browser.execute_script("Notification.requestPermission = function () { return Promise.resolve('denied'); };")
    by_css(browser, "#subscribe-device").click()
    wait_for(lambda: "Notifications are blocked" in by_css(browser, "#device-state").text, message="the refusal")


def test_push_records_table_filters_and_exports(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    alex = make_visitor(session, new.shop.id, clock.now(), visitor_key="v-alex-0001")
    for i in range(8):
        make_push(session, alex, "welcome" if i % 2 else "shipped", clock.now() - timedelta(hours=i * 9),
                  title="Your order shipped" if i % 2 == 0 else "Welcome, Alex — a long title that wraps in its cell",
                  status="sent" if i % 3 else "failed", http_status=201 if i % 3 else 400,
                  error=None if i % 3 else "bad request")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/pushes")
    assert len(all_css(browser, "#push-records tbody tr")) == 8
    both_widths(browser, shots, "push-records")
    by_css(browser, "#filter-q").send_keys("shipped")
    from selenium.webdriver.support.ui import Select
    Select(by_css(browser, "#filter-status")).select_by_value("failed")
    by_css(browser, "#apply-filters").click()
    wait_for(lambda: "q=shipped" in browser.current_url, message="the filtered page")
    rows = all_css(browser, "#push-records tbody tr")
    assert len(rows) == 2 and all("Your order shipped" in row.text and "failed" in row.text for row in rows)
    assert "match the filters" in by_css(browser, "#record-count").text
    export = by_css(browser, "#export-csv").get_attribute("href")
    assert export.endswith("/admin/pushes.csv?status=failed&q=shipped")
    both_widths(browser, shots, "push-records-filtered")


def test_settings_set_the_shops_time_zone_and_currency(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings")
    from selenium.webdriver.support.ui import Select
    Select(by_css(browser, "#timezone")).select_by_visible_text("Europe/Berlin")
    currency = by_css(browser, "#currency")
    currency.clear()
    currency.send_keys("EUR")
    by_css(browser, "#save-settings").click()
    wait_for(lambda: all_css(browser, ".flash-ok"), message="saved")
    assert "(Europe/Berlin)" in by_css(browser, "#quiet-zone").text
    session.expire_all()
    saved = session.get(Shop, new.shop.id)
    assert (saved.timezone, saved.currency) == ("Europe/Berlin", "EUR")
    both_widths(browser, shots, "settings-zone-currency")
