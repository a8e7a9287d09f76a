"""On-site messages on the demo shop in a real headless Chromium, with real waits (no mocked clock in
the page): the seed cart rule (third cart visit, more than 10 s) shows its message with a single-use
code, not on the second visit and not at 9 s; a second visitor gets another code; a quick reply tags
the visitor, whom a campaign segment then selects; an order paid through the demo's signed webhook
counts in the message's report; the dialog is accessible (focus, Escape, axe-core) and screenshots
are taken at laptop and phone widths.

The service's clock is the tests' frozen clock: it moves a minute before each visit (the visits are
counted from the events stored before the current page started); the page's own time is real.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.core.models import Event, OnsiteImpression, Shop, Visitor, VisitorTag
from server.merchant import onsite_admin as onsite
from server.merchant.coupon_admin import CouponUpdate, update_coupon, upload_codes
from server.planning import segments
from server.reports.onsite import message_reports
from tests.browser.chromium import wait_for
from tests.browser.test_accessibility import AXE
from tests.browser.test_dashboard_pages import log_in
from tests.browser.test_storefront import screenshot_dir, status, storefront, widget_ready  # noqa: F401 (a fixture)
from tests.factories import make_subscription

pytestmark = pytest.mark.browser

CODES = ["CART-FIRST", "CART-SECOND"]


@pytest.fixture
def seeded(storefront, session, clock):  # noqa: F811
    """The demo shop with two single-use on-site codes and the seed cart rule (plus two quick replies), active."""
    shop = session.scalars(sa.select(Shop).where(Shop.public_key == storefront.public_key)).one()
    update_coupon(session, shop, "onsite", CouponUpdate(mode="list"), clock.now())
    upload_codes(session, shop, "onsite", CODES, clock.now())
    body = onsite.seed_template(session, shop)
    body["status"] = "active"
    body["content"]["replies"] = [{"label": "For me", "tag": "self"}, {"label": "A gift", "tag": "gift"}]
    message = onsite.create_message(session, shop, onsite.parse_message(body), clock.now())
    session.commit()
    return shop, message.id


def dialog(driver):
    from selenium.webdriver.common.by import By

    hosts = driver.find_elements(By.ID, "pushcart-onsite")
    return hosts[0].shadow_root if hosts else None


def cart_views(session, key: str) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(Event).join(Visitor, Event.visitor_id == Visitor.id)
                          .where(Visitor.visitor_key == key, Event.type == "page_view",
                                 Event.url.like("%/demo/cart"))) or 0


def cart_visit(driver, base: str, clock) -> str:
    """One visit to the cart page, a minute after the last; returns the visitor id."""
    clock.advance(minutes=1)
    driver.get(base + "/demo/cart")
    widget_ready(driver)
    return status(driver)["visitor_id"]


def dialog_violations(driver) -> list[dict]:
    """axe-core's violations (any impact) inside the on-site dialog's shadow root."""
    return driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run({include: [['#pushcart-onsite', '.box']]}, {resultTypes: ['violations']})"
        ".then(function (r) { done(r.violations.map(function (v) { return {id: v.id, impact: v.impact}; })); })"
        ".catch(function (e) { done([{id: 'axe-error', impact: String(e)}]); });")


def page_seconds(driver) -> float:
    return driver.execute_script("return performance.now() / 1000")


def wait_until_page_second(driver, seconds: float) -> None:
    left = seconds - page_seconds(driver)
    if left > 0:
        time.sleep(left)


def new_visitor(driver, base: str) -> None:
    """Forget the visitor: the next page gets a new visitor id (as another person's browser would)."""
    driver.get(base + "/demo/")
    driver.execute_script("localStorage.clear()")
    driver.delete_all_cookies()


def test_the_seed_cart_rule_shows_a_single_use_code_on_the_third_visit_after_ten_seconds(
        storefront, browser, seeded, session, clock, app):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shop, message_id = seeded
    base = storefront.base
    key = cart_visit(browser, base, clock)
    wait_for(lambda: cart_views(session, key) == 1, message="the first cart view stored")
    cart_visit(browser, base, clock)
    wait_for(lambda: cart_views(session, key) == 2, message="the second cart view stored")
    wait_until_page_second(browser, 12)
    assert dialog(browser) is None, "the second cart visit shows nothing, even after 12 s"

    cart_visit(browser, base, clock)
    wait_for(lambda: cart_views(session, key) == 3, message="the third cart view stored")
    wait_until_page_second(browser, 9)
    assert dialog(browser) is None, "nothing at 9 s"
    root = wait_for(lambda: dialog(browser), timeout=8, message="the message after 10 s")
    assert page_seconds(browser) >= 11
    box = root.find_element(By.CSS_SELECTOR, "[role=dialog]")
    title = root.find_element(By.CSS_SELECTOR, "#pc-title")
    assert box.get_attribute("aria-labelledby") == "pc-title" and title.text == "Still thinking it over?"
    assert box.get_attribute("aria-describedby") == "pc-text"
    assert root.find_element(By.CSS_SELECTOR, ".code").text == CODES[0]
    # Focus moved into the dialog; a fixed overlay: the page did not move.
    assert browser.execute_script("return document.activeElement.id") == "pushcart-onsite"
    assert browser.execute_script(
        "var b = document.getElementById('pushcart-onsite').shadowRoot.querySelector('.box');"
        "return getComputedStyle(b).position") == "fixed"
    if AXE.is_file():  # the dialog only: the demo shop's own page is not under test here
        browser.execute_script(AXE.read_text())
        assert dialog_violations(browser) == []
    shots = screenshot_dir()
    browser.save_screenshot(str(shots / "onsite-cart-laptop.png"))
    browser.set_window_size(390, 844)
    browser.save_screenshot(str(shots / "onsite-cart-phone.png"))
    browser.set_window_size(1280, 860)

    # A quick reply tags the visitor; a campaign segment selects them by the tag.
    [gift] = [b for b in root.find_elements(By.CSS_SELECTOR, "button.reply") if b.text == "A gift"]
    gift.click()
    wait_for(lambda: dialog(browser) is None, message="the dialog to close on a reply")
    visitor = session.scalars(sa.select(Visitor).where(Visitor.visitor_key == key)).one()
    wait_for(lambda: session.expire_all() or session.scalars(
        sa.select(VisitorTag.tag).where(VisitorTag.visitor_id == visitor.id)).all() == ["gift"], message="the tag")
    make_subscription(session, visitor, clock.now())
    session.commit()
    selected = segments.parse_segment([{"type": "has_tag", "tag": "gift"}])
    assert segments.count(session, shop, selected, clock.now()) == 1
    assert segments.count(session, shop, segments.parse_segment([{"type": "has_tag", "tag": "self"}]), clock.now()) == 0

    # The visitor buys through the demo's checkout: its back end sends the signed orders webhook.
    clock.advance(hours=1)
    browser.get(base + "/demo/products/linen-shirt")
    widget_ready(browser)
    browser.find_element(By.ID, "add-to-cart").click()
    browser.get(base + "/demo/checkout")
    widget_ready(browser)
    browser.find_element(By.ID, "pay").click()
    wait_for(lambda: "/demo/thanks" in browser.current_url, timeout=15, message="the order confirmation")
    session.expire_all()
    report = message_reports(session, shop)[message_id]
    assert (report["impressions"], report["replies_by_tag"], report["orders"], str(report["revenue"])) == \
        (1, {"gift": 1}, 1, "49.00")

    # A second visitor: the same rule, another single-use code; Escape closes and gives focus back.
    new_visitor(browser, base)
    for n in range(3):
        other = cart_visit(browser, base, clock)
        assert other != key
        wait_for(lambda: cart_views(session, other) == n + 1, message="the other visitor's cart view stored")
    root = wait_for(lambda: dialog(browser), timeout=16, message="the second visitor's message")
    assert root.find_element(By.CSS_SELECTOR, ".code").text == CODES[1]
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(lambda: dialog(browser) is None, message="Escape to close the dialog")
    assert browser.execute_script("return document.activeElement === document.body")
    wait_for(lambda: session.expire_all() or session.scalars(sa.select(OnsiteImpression.closed_at).where(
        OnsiteImpression.code == CODES[1])).one() is not None, message="the close recorded")


def test_the_dashboard_shows_the_message_and_its_report(storefront, browser, seeded, session, clock, app):  # noqa: F811
    """The On-site page and the message's page at laptop and phone widths (screenshots)."""
    from selenium.webdriver.common.by import By

    shop, message_id = seeded
    token = app.config["DEMO_SHOP"]["admin_token"]
    log_in(browser, storefront.base, token)
    assert browser.find_element(By.CSS_SELECTOR, "[data-onsite=impressions]").text == "0"
    shots = screenshot_dir()
    for width, height, name in ((1280, 860, "laptop"), (390, 844, "phone")):
        browser.set_window_size(width, height)
        browser.get(storefront.base + "/admin/onsite")
        assert browser.find_element(By.CSS_SELECTOR, f"[data-message='{message_id}'] [data-status]").text == "showing"
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(Path(shots) / f"onsite-list-{name}.png"))
        browser.get(storefront.base + f"/admin/onsite/{message_id}")
        assert browser.find_element(By.ID, "coupon_kind").get_attribute("value") == "onsite"
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(Path(shots) / f"onsite-message-{name}.png"))


def test_the_preview_link_of_a_test_push_shows_the_message_at_once(storefront, browser, seeded, session, clock,
                                                                   app):  # noqa: F811
    """The link a message's test push opens (``test_devices.onsite_content``): a paused message whose
    rule wants a third cart visit shows on the first visit to its page, with the sample code, and
    nothing is counted or taken; without the marker the page shows nothing."""
    from selenium.webdriver.common.by import By

    from server.core.models import CouponCode
    from server.merchant.test_devices import onsite_content

    shop, message_id = seeded
    body = {k: v for k, v in onsite.as_json(onsite.get_message(session, shop, message_id)).items()
            if k in ("name", "rule", "content")}
    body["status"] = "paused"
    body["rule"].update(page="prefix", path_prefix="/demo/cart")
    onsite.update_message(session, shop, message_id, onsite.parse_message(body), clock.now())
    session.commit()
    link = onsite_content(session, shop, message_id, app.secret_key, clock.now()).url
    assert link.startswith(storefront.base + "/demo/cart?pushcart_preview=")

    browser.set_window_size(390, 844)
    browser.get(link)
    widget_ready(browser)
    root = wait_for(lambda: dialog(browser), timeout=8, message="the previewed message")
    assert page_seconds(browser) < 6, "at once (the script's first ask), not after the rule's dwell"
    assert root.find_element(By.CSS_SELECTOR, "#pc-title").text == "Still thinking it over?"
    assert root.find_element(By.CSS_SELECTOR, ".code").text == "TEST-COUPON"
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.save_screenshot(str(screenshot_dir() / "onsite-preview-phone.png"))
    browser.set_window_size(1280, 860)
    browser.save_screenshot(str(screenshot_dir() / "onsite-preview-laptop.png"))
    [gift] = [b for b in root.find_elements(By.CSS_SELECTOR, "button.reply") if b.text == "A gift"]
    gift.click()
    wait_for(lambda: dialog(browser) is None, message="the dialog to close on a reply")

    browser.get(storefront.base + "/demo/cart")
    widget_ready(browser)
    wait_until_page_second(browser, 5)
    assert dialog(browser) is None, "without the marker the paused message shows nothing"
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(OnsiteImpression)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(VisitorTag)) == 0, "a preview's reply tags no one"
    assert session.scalar(sa.select(sa.func.count()).select_from(CouponCode)
                          .where(CouponCode.assigned_at.is_not(None))) == 0, "no code taken"
