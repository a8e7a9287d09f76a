"""The content pages in a real headless Chromium: Coupons (mode, codes, what is left), the Events
card's action buttons and locale texts, the Settings' soft-ask languages; screenshots saved
under ``$PUSHCART_SCREENSHOTS`` when set, else under the test's temporary directory."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, no_alert  # noqa: F401
from tests.browser.chromium import wait_for
from tests.factories import make_shop

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("PUSHCART_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_set_up_a_coupon_list_and_see_what_is_left(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme " + XSS)
    session.commit()
    log_in(browser, live, new.admin_token)
    by_css(browser, 'a[href="/admin/coupons"]').click()
    wait_for(lambda: browser.current_url.endswith("/admin/coupons"), message="the coupons page")
    from selenium.webdriver.support.ui import Select
    Select(by_css(browser, "#mode-welcome")).select_by_value("list")
    by_css(browser, '[data-save-coupon="welcome"]').click()
    wait_for(lambda: "Welcome coupon saved." in browser.page_source, message="the saved mode")
    by_css(browser, "#codes-welcome").send_keys("WELCOME-A1\nWELCOME-B2\nWELCOME-A1\n")
    by_css(browser, '[data-upload="welcome"]').click()
    wait_for(lambda: "2 code(s) added" in browser.page_source, message="the upload")
    assert by_css(browser, "#coupon-welcome .coupon-counts").get_attribute("data-remaining") == "2"
    Select(by_css(browser, "#mode-shipped")).select_by_value("fixed")
    by_css(browser, "#code-shipped").send_keys("SHIP5")
    by_css(browser, '[data-save-coupon="shipped"]').click()
    wait_for(lambda: "Shipped coupon saved." in browser.page_source, message="the fixed code")
    assert by_css(browser, "#code-shipped").get_attribute("value") == "SHIP5"
    assert no_alert(browser) and XSS not in browser.page_source
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "coupons-laptop.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser), "the coupons page must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "coupons-phone.png"))


def test_give_a_kind_buttons_and_a_german_text(live, browser, session, clock, shots):
    new = make_shop(session, clock.now())
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/events")
    card = by_css(browser, "#welcome")
    card.find_element("css selector", '[name="action_title_1"]').send_keys("See the sale")
    card.find_element("css selector", '[name="action_url_1"]').send_keys("https://shop.example/sale")
    card.find_element("css selector", '[name="action_title_2"]').send_keys("Use {{ coupon }}")
    card.find_element("css selector", '[name="action_url_2"]').send_keys("https://shop.example/cart")
    card.find_element("css selector", '[name="locale_code_0"]').send_keys("de")
    card.find_element("css selector", '[name="locale_title_0"]').send_keys("Willkommen " + XSS)
    card.find_element("css selector", '[name="locale_body_0"]').send_keys("Schön, dass du da bist")
    by_css(browser, '[data-save="welcome"]').click()
    wait_for(lambda: "Welcome saved." in browser.page_source, message="the saved card")
    card = by_css(browser, "#welcome")
    assert card.find_element("css selector", '[name="action_title_2"]').get_attribute("value") == "Use {{ coupon }}"
    assert card.find_element("css selector", '[name="locale_title_0"]').get_attribute("value") == "Willkommen " + XSS
    assert no_alert(browser)
    browser.execute_script("document.getElementById('welcome').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-content.png"))


def test_translate_the_soft_ask(live, browser, session, clock, shots):
    new = make_shop(session, clock.now())
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings")
    by_css(browser, '[name="prompt_locale_0"]').send_keys("de")
    by_css(browser, '[name="prompt_locale_text_0"]').send_keys("Benachrichtigen, wenn der Warenkorb wartet?")
    by_css(browser, '[name="prompt_locale_no_0"]').send_keys("Nein danke")
    by_css(browser, "#save-settings").click()
    wait_for(lambda: "Settings saved." in browser.page_source, message="the saved settings")
    assert by_css(browser, '[name="prompt_locale_no_0"]').get_attribute("value") == "Nein danke"
    browser.execute_script("document.querySelector('[name=prompt_locale_0]').scrollIntoView()")
    browser.save_screenshot(str(shots / "settings-prompt-locales.png"))
