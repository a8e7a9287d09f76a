"""The soft-ask designer in a real headless Chromium: the Settings page's live preview (desktop and
phone frames), and the widget on the demo shop drawing the saved design, at 1280 and 390 px wide
(screenshots under ``$PUSHCART_SCREENSHOTS`` when set, else the test's temporary directory)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Shop
from server.core.shops import DEFAULT_PROMPT
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.browser.test_dashboard_tools_pages import both_widths
from tests.browser.test_storefront import soft_ask, storefront, widget_ready  # noqa: F401
from tests.factories import make_shop

pytestmark = pytest.mark.browser


def preview(browser) -> dict:
    return browser.execute_script("""
        var box = document.querySelector('#ask-preview .ask-box'), yes = box.querySelector('.ask-yes');
        return {text: box.querySelector('.ask-text').textContent, yes: yes.textContent,
                no: box.querySelector('.ask-no').textContent, position: box.dataset.position,
                colour: getComputedStyle(yes).backgroundColor, icon: !box.querySelector('.ask-icon').hidden};""")


def test_the_designer_previews_live_on_desktop_and_phone_and_saves(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings#ask-designer")
    assert preview(browser)["text"] == DEFAULT_PROMPT["text"]
    text = by_css(browser, "#prompt_text")
    text.clear()
    text.send_keys("Get a note when your size is back?")
    by_css(browser, "#prompt_yes").send_keys("Yes please")
    by_css(browser, "#prompt_phone_text").send_keys("Size alerts?")
    browser.execute_script("var c = document.getElementById('prompt_color'); c.value = '#0a7d3b';"
                           "c.dispatchEvent(new Event('input'));")
    from selenium.webdriver.support.ui import Select
    Select(by_css(browser, "#prompt_position")).select_by_value("top")
    Select(by_css(browser, "#prompt_phone_position")).select_by_value("bottom-right")
    shown = preview(browser)
    assert (shown["text"], shown["yes"], shown["no"], shown["position"]) == (
        "Get a note when your size is back?", "Yes please", "Not now", "top")
    assert shown["colour"] == "rgb(10, 125, 59)"
    browser.save_screenshot(str(shots / "ask-designer-desktop-preview-1280.png"))
    by_css(browser, '.preview-toggle [data-device="phone"]').click()
    shown = preview(browser)
    assert (shown["text"], shown["position"]) == ("Size alerts?", "bottom-right")
    assert by_css(browser, '.preview-toggle [data-device="phone"]').get_attribute("aria-pressed") == "true"
    by_css(browser, "#save-settings").click()
    wait_for(lambda: all_css(browser, ".flash-ok"), message="saved")
    session.expire_all()
    prompt = session.get(Shop, new.shop.id).prompt
    assert (prompt["yes"], prompt["position"], prompt["phone_text"], prompt["color"]) == (
        "Yes please", "top", "Size alerts?", "#0a7d3b")
    browser.get(live + "/admin/settings#ask-designer")
    both_widths(browser, shots, "ask-designer")
    browser.set_window_size(390, 844)
    by_css(browser, '.preview-toggle [data-device="phone"]').click()
    assert preview(browser)["text"] == "Size alerts?"
    browser.execute_script("document.getElementById('ask-preview').scrollIntoView({block: 'center'})")
    browser.save_screenshot(str(shots / "ask-designer-phone-preview-390.png"))


def test_the_widget_draws_the_saved_design_on_a_desktop_and_a_phone(storefront, browser, session, shots):
    shop, driver = storefront, browser
    row = session.scalars(sa.select(Shop).where(Shop.public_key == shop.public_key)).one()
    row.prompt = {**DEFAULT_PROMPT, "text": "Deals for you?", "yes": "Go", "no": "Nope", "position": "top",
                  "icon": shop.base + "/demo/static/linen-shirt.svg", "phone_text": "Deals?",
                  "phone_position": "bottom-right", "after_pageviews": 0}
    session.commit()

    def box() -> dict:
        return driver.execute_script("""
            var root = document.getElementById('pushcart-softask').shadowRoot, b = root.querySelector('.box');
            var r = b.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, text: root.querySelector('p').textContent,
                    yes: root.querySelector('.yes').textContent, no: root.querySelector('.no').textContent,
                    icon: getComputedStyle(root.querySelector('.bell')).backgroundImage,
                    width: innerWidth, height: innerHeight};""")

    driver.set_window_size(1280, 800)
    driver.get(shop.base + "/demo/")
    widget_ready(driver)
    wait_for(lambda: soft_ask(driver), message="the soft-ask")
    desktop = box()
    assert (desktop["text"], desktop["yes"], desktop["no"]) == ("Deals for you?", "Go", "Nope")
    assert desktop["top"] == 16 and abs((desktop["left"] + desktop["right"]) / 2 - desktop["width"] / 2) < 2
    assert "linen-shirt.svg" in desktop["icon"]
    driver.save_screenshot(str(shots / "widget-designed-1280.png"))
    driver.set_window_size(390, 844)
    driver.execute_script("localStorage.clear()")
    driver.get(shop.base + "/demo/cart")
    widget_ready(driver)
    wait_for(lambda: soft_ask(driver), message="the soft-ask on a phone")
    phone = box()
    assert phone["text"] == "Deals?"
    assert phone["left"] == 8 and phone["right"] == phone["width"] - 8
    assert abs(phone["bottom"] - (phone["height"] - 8)) < 1
    driver.save_screenshot(str(shots / "widget-designed-390.png"))
