"""The merchant's dashboard in a real headless Chromium: log in, presets, live preview, stats, escaping.

Screenshots of the overview and events pages (laptop and phone widths) are saved under
``$PUSHCART_SCREENSHOTS`` when set, else under the test's temporary directory.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.core.models import PresetSetting
from tests.browser.chromium import LiveServer, wait_for
from tests.dashboard_seed import make_event, make_push, seed_stats_scenario
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_admin_stats import EXPECTED_A

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
PAGES = ["/admin/", "/admin/events", "/admin/pushes", "/admin/visitors", "/admin/install", "/admin/settings"]


@pytest.fixture
def live(app) -> Iterator[str]:
    """The app on a free port of 127.0.0.1."""
    server = LiveServer(app).start()
    app.config["PUBLIC_URL"] = server.base
    yield server.base
    server.stop()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go."""
    folder = Path(os.environ.get("PUSHCART_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def log_in(driver, base: str, token: str) -> None:
    """Log in through the form, as a merchant would."""
    driver.get(base + "/admin/")
    assert driver.current_url.endswith("/admin/login")
    by_css(driver, "#token-login summary").click()  # the token log-in, folded under the e-mail one
    by_css(driver, "#token").send_keys(token)
    by_css(driver, "#login").click()
    wait_for(lambda: driver.current_url.endswith("/admin/"), message="the overview after log-in")


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def fits_width(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_log_in_and_read_the_stats_of_a_seeded_scenario(live, browser, session, shots):
    a, _ = seed_stats_scenario(session)
    log_in(browser, live, a.admin_token)
    browser.get(live + "/admin/?from=2026-01-05&to=2026-01-07")
    figures = {el.get_attribute("data-figure"): el.text for el in all_css(browser, "[data-figure]")}
    assert figures == {
        "subscribers": str(EXPECTED_A["subscribers"]), "new_subscribers": str(EXPECTED_A["new_subscribers"]),
        "pushes_sent": str(EXPECTED_A["pushes_sent"]), "pushes_failed": str(EXPECTED_A["pushes_failed"]),
        "clicks": str(EXPECTED_A["clicks"]), "ctr": "60.0 %", "orders": str(EXPECTED_A["orders"]),
        "gmv": EXPECTED_A["gmv"], "all_gmv": EXPECTED_A["all_gmv"],
    }
    funnel = {li.get_attribute("data-step"): int(li.find_element("css selector", "strong").text)
              for li in all_css(browser, "#funnel li")}
    assert funnel == EXPECTED_A["funnel"]
    rows = {tr.get_attribute("data-kind"): [td.text for td in tr.find_elements("css selector", "td")][1:]
            for tr in all_css(browser, "#by-kind tbody tr")}
    assert rows["checkout_recovery"] == ["1", "1", "100.0 %", "2", "120.15"]
    assert rows["browse_abandonment"] == ["2", "2", "50.0 %", "0", "0.00"]
    # The charts are drawn by the vendored Chart.js, with the daily series and the funnel.
    charts = wait_for(lambda: browser.execute_script(
        "var d = Chart.getChart('daily-chart'), f = Chart.getChart('funnel-chart');"
        "return d && f ? [d.data.datasets.map(function (s) { return s.data; }), f.data.datasets[0].data] : null;"),
        message="the charts")
    daily = EXPECTED_A["daily"]
    assert charts[0] == [[d["sent"] for d in daily], [d["clicks"] for d in daily], [float(d["gmv"]) for d in daily]]
    assert charts[1] == [EXPECTED_A["funnel"][k] for k in ("visitors", "subscribers", "shoppers", "buyers", "repeat_buyers")]
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "overview-laptop.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    wait_for(lambda: browser.execute_script("return !!Chart.getChart('funnel-chart')"), message="the phone charts")
    assert fits_width(browser), "the overview must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "overview-phone.png"))


def test_switch_a_preset_off_and_on_and_watch_the_preview_follow_the_template(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/events")
    assert by_css(browser, "#shipped .state").text == "On"
    by_css(browser, '[data-toggle="shipped"]').click()
    wait_for(lambda: by_css(browser, "#shipped .state").text == "Off", message="shipped to show Off")
    assert "Shipped is now off." in by_css(browser, ".flash-ok").text
    session.expire_all()
    assert session.scalars(sa.select(PresetSetting.enabled).where(PresetSetting.kind == "shipped")).one() is False
    by_css(browser, '[data-toggle="shipped"]').click()
    wait_for(lambda: by_css(browser, "#shipped .state").text == "On", message="shipped to show On")
    session.expire_all()
    assert session.scalars(sa.select(PresetSetting.enabled).where(PresetSetting.kind == "shipped")).one() is True

    preview_title = '#preview-welcome [data-field="title"]'
    wait_for(lambda: by_css(browser, preview_title).text == "Welcome to Acme Outfitters!", message="the first preview")
    title = by_css(browser, "#title-welcome")
    title.clear()
    title.send_keys("Hello {{ first_name }}, {{ product_title }} is back")
    wait_for(lambda: by_css(browser, preview_title).text == "Hello Alex, Linen Shirt is back",
             message="the preview to follow the typed template")
    image = by_css(browser, "#image-welcome")
    image.send_keys("https://cdn.example/banner.png")
    wait_for(lambda: by_css(browser, '#preview-welcome [data-field="image"]').get_attribute("src")
             == "https://cdn.example/banner.png", message="the preview image")
    url = by_css(browser, "#url-welcome")
    url.clear()
    url.send_keys("javascript:alert(1)")
    wait_for(lambda: "http(s)" in by_css(browser, '#welcome [data-error="url"]').text, message="the url warning")
    url.clear()
    url.send_keys("{{ shop_url }}")
    wait_for(lambda: by_css(browser, '#welcome [data-error="url"]').text == "", message="the warning to clear")
    browser.execute_script("document.getElementById('welcome').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-laptop.png"))
    by_css(browser, '[data-save="welcome"]').click()
    wait_for(lambda: "Welcome saved." in browser.page_source, message="the save")
    session.expire_all()
    saved = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "welcome")).one()
    assert saved.title == "Hello {{ first_name }}, {{ product_title }} is back"
    assert saved.image == "https://cdn.example/banner.png"
    browser.set_window_size(390, 844)
    browser.get(live + "/admin/events")
    assert fits_width(browser), "the events page must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "events-phone.png"))


def test_a_hostile_product_title_shows_as_text_on_every_page(live, browser, session, clock):
    new = make_shop(session, clock.now(), name=XSS)
    visitor = make_visitor(session, new.shop.id, clock.now(), referrer=XSS)
    make_subscription(session, visitor, clock.now())
    make_event(session, visitor, "product_view", clock.now(), product={"title": XSS, "url": "https://shop.example/p"})
    make_push(session, visitor, "browse_abandonment", clock.now(), title=f"Still thinking about {XSS}?", body=XSS)
    session.commit()
    log_in(browser, live, new.admin_token)
    for path in PAGES:
        browser.get(live + path)
        assert no_alert(browser), path
        assert XSS in by_css(browser, "body").text, path
        injected = browser.execute_script(
            "return Array.prototype.filter.call(document.images, function (i) {"
            " return i.getAttribute('src') === 'x'; }).length")
        assert injected == 0, path
    assert no_alert(browser)
    browser.set_window_size(390, 844)
    for path in PAGES:
        browser.get(live + path)
        assert fits_width(browser), f"{path} must not scroll sideways on a phone"
