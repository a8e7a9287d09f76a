"""A merchant's first run in Chromium: from ``/`` to the Overview's first steps, and a nav that works on a phone.

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set, else the test's
temporary directory.
"""
from __future__ import annotations

import pytest

from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, shots  # noqa: F401 (fixtures)
from tests.dashboard_seed import make_event
from tests.factories import make_shop, make_visitor

pytestmark = pytest.mark.browser

NAV_PAGES = ["/admin/", "/admin/events", "/admin/campaigns", "/admin/coupons", "/admin/pushes", "/admin/visitors",
             "/admin/experiments", "/admin/lift", "/admin/install", "/admin/settings"]


def log_in_from_root(driver, base: str, token: str) -> None:
    """Open ``/`` as a new merchant would and log in on the page it leads to."""
    driver.get(base + "/")
    wait_for(lambda: driver.current_url.endswith("/admin/login"), message="the log-in page from /")
    by_css(driver, "#token-login summary").click()  # the token log-in, folded under the e-mail one
    by_css(driver, "#token").send_keys(token)
    by_css(driver, "#login").click()
    wait_for(lambda: driver.current_url.endswith("/admin/"), message="the overview after log-in")


def active_item_box(driver) -> dict:
    """Where the nav's active item is, against the window and its nav."""
    return driver.execute_script(
        "var a = document.querySelector('.nav [aria-current=page]'), r = a.getBoundingClientRect(),"
        " n = a.closest('.nav').getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, width: window.innerWidth,"
        " navLeft: n.left, navRight: n.right, text: a.textContent.trim()};")


def test_a_new_merchant_goes_from_the_root_to_first_steps_that_tick(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in_from_root(browser, live, new.admin_token)
    steps = {li.get_attribute("data-step"): "step-done" in li.get_attribute("class")
             for li in all_css(browser, "#first-steps li")}
    assert steps == {"tag": False, "worker": False, "subscriber": False, "push": False, "click": False}
    visitor = make_visitor(session, new.shop.id, clock.now())
    make_event(session, visitor, "page_view", clock.now())
    session.commit()
    browser.refresh()
    assert "step-done" in by_css(browser, '#first-steps [data-step="tag"]').get_attribute("class")
    assert "1 of 5 done" in by_css(browser, "#first-steps").text
    browser.save_screenshot(str(shots / "first-steps-laptop.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "first-steps-phone.png"))


def test_on_a_phone_the_nav_keeps_one_row_and_shows_the_active_page(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in_from_root(browser, live, new.admin_token)
    browser.set_window_size(390, 844)
    for path in NAV_PAGES:
        browser.get(live + path)
        assert fits_width(browser), f"{path} must not scroll sideways on a phone"
        box = wait_for(lambda: (lambda b: b if b["left"] >= b["navLeft"] - 1 and b["right"] <= b["navRight"] + 1 else None)(
            active_item_box(browser)), message=f"the active item of {path} in view")
        assert 0 <= box["left"] and box["right"] <= box["width"], path
        tops = {round(a.rect["y"]) for a in all_css(browser, ".nav a")}
        assert len(tops) == 1, f"{path}: the nav is one row on a phone, not {len(tops)}"
        if path == "/admin/settings":
            browser.save_screenshot(str(shots / "nav-phone-settings.png"))
    # The keyboard reaches every item: focusing the last one scrolls it into view.
    browser.get(live + "/admin/")
    last = all_css(browser, ".nav a")[-1]
    browser.execute_script("arguments[0].focus()", last)
    assert browser.switch_to.active_element == last
    assert browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(), n = arguments[0].closest('.nav').getBoundingClientRect();"
        "return r.right <= n.right + 1 && r.left >= n.left - 1;", last)
    assert by_css(browser, ".nav").get_attribute("aria-label")
    browser.set_window_size(1280, 860)
    browser.get(live + "/admin/settings")
    browser.save_screenshot(str(shots / "nav-laptop-settings.png"))
