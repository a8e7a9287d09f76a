"""The soft-ask designer in a real headless Chromium: the preview follows the merchant's typing (texts,
colour, position, the phone frame), the saved design is what the demo storefront shows at 1280 px
and on a 390 px phone viewport (colour, position, texts, icon), and screenshots are taken of both.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from server.core.models import Shop
from server.merchant.softask_admin import save_design
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import by_css, live, log_in, shots  # noqa: F401 (fixtures)
from tests.browser.test_storefront import soft_ask, status, storefront, widget_ready  # noqa: F401 (a fixture)
from tests.factories import make_shop

pytestmark = pytest.mark.browser

# The previewed soft-ask's parts, read from the preview's shadow root (computed styles in px).
PREVIEW = """
    var f = document.getElementById("softask-frame"), o = f.getBoundingClientRect(), b = f.clientLeft;
    var frame = {width: o.width, left: o.left + b, right: o.right - b, top: o.top + b, bottom: o.bottom - b};
    var root = document.getElementById("softask-preview-host").shadowRoot, box = root.querySelector(".box");
    if (!box) return null;
    var r = box.getBoundingClientRect(), yes = getComputedStyle(root.querySelector(".yes"));
    var shown = function (sel) { var e = root.querySelector(sel); return e ? e.innerText : null; };
    return {title: shown(".title"), text: shown(".text"), yes: shown(".yes"), no: shown(".no"),
            background: yes.backgroundColor, color: yes.color, frame: Math.round(frame.width),
            left: Math.round(r.left - frame.left), right: Math.round(frame.right - r.right),
            top: Math.round(r.top - frame.top), bottom: Math.round(frame.bottom - r.bottom),
            icon: root.querySelector("img.icon") ? root.querySelector("img.icon").getAttribute("src") : null};"""


def preview(driver) -> dict | None:
    return driver.execute_script(PREVIEW)


def set_value(driver, selector: str, value: str) -> None:
    """A value as the colour picker or a select sets it: the value, then ``input`` and ``change``."""
    driver.execute_script("""var e = document.querySelector(arguments[0]); e.value = arguments[1];
        e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true}));""",
                          selector, value)


def test_the_preview_follows_the_typing_and_the_save_keeps_the_design(live, browser, session, clock, shots):  # noqa: F811
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    browser.set_window_size(1280, 900)
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings")
    browser.execute_script("document.getElementById('the-ask').scrollIntoView()")
    browser.save_screenshot(str(Path(shots) / "softask-settings-link-1280.png"))
    by_css(browser, "#open-softask-designer").click()
    wait_for(lambda: browser.current_url.endswith("/admin/settings/soft-ask"), message="the designer")
    first = wait_for(lambda: preview(browser), message="the first preview")
    assert first["text"] == "Get a note when your cart is waiting or your order ships?"
    assert (first["yes"], first["no"], first["title"]) == ("Yes, notify me", "Not now", None)
    assert first["background"] == "rgb(31, 111, 235)" and (first["left"], first["bottom"]) == (16, 16)
    browser.save_screenshot(str(Path(shots) / "softask-designer-1280-default.png"))

    # Typing: each keystroke's preview comes back within the debounce and a round trip.
    by_css(browser, "#title").send_keys("Never miss a restock")
    wait_for(lambda: (preview(browser) or {}).get("title") == "Never miss a restock", message="the title typed")
    text = by_css(browser, "#text")
    text.clear()
    text.send_keys("We'll tell you when your size is back. <b>No spam</b>.")
    wait_for(lambda: (preview(browser) or {}).get("text") == "We'll tell you when your size is back. <b>No spam</b>.",
             message="the text typed (as text, never HTML)")
    by_css(browser, "#yes").send_keys("Tell me")
    by_css(browser, "#no").send_keys("No thanks")
    set_value(browser, "#color", "#ffd400")
    set_value(browser, "#position", "bottom-right")
    look = wait_for(lambda: (lambda p: p if p and p["background"] == "rgb(255, 212, 0)" and p["right"] == 16 else None)(
        preview(browser)), message="the colour and the corner")
    assert (look["yes"], look["no"]) == ("Tell me", "No thanks")
    assert look["color"] == "rgb(0, 0, 0)"  # dark text on a light accent
    by_css(browser, "#icon").send_keys("https://cdn.example/logo.png")
    wait_for(lambda: (preview(browser) or {}).get("icon") == "https://cdn.example/logo.png", message="the icon")
    # A bad icon address is named under its field and not previewed.
    by_css(browser, "#icon").send_keys(" x")
    wait_for(lambda: by_css(browser, '[data-error="icon"]').text.startswith("must be empty or an absolute"),
             message="the icon's error")
    assert preview(browser)["icon"] is None
    by_css(browser, "#icon").clear()
    by_css(browser, "#icon").send_keys("https://cdn.example/logo.png")

    # The phone frame: 390 px wide, the phone's own position and shorter text.
    set_value(browser, "#phone_position", "top")
    by_css(browser, "#phone_text").send_keys("Back-in-size alerts?")
    by_css(browser, "#preview-phone").click()
    phone = wait_for(lambda: (lambda p: p if p and p["text"] == "Back-in-size alerts?" and p["top"] == 8 else None)(
        preview(browser)), message="the phone layout")
    assert phone["frame"] == 390 and phone["left"] == phone["right"] == 8
    assert by_css(browser, "#preview-phone").get_attribute("aria-pressed") == "true"
    browser.save_screenshot(str(Path(shots) / "softask-designer-1280-phone-frame.png"))
    by_css(browser, "#preview-desktop").click()
    wait_for(lambda: (preview(browser) or {}).get("text", "").startswith("We'll tell you"), message="the computer again")
    browser.save_screenshot(str(Path(shots) / "softask-designer-1280.png"))

    by_css(browser, "#save-softask").click()
    wait_for(lambda: "Soft-ask saved" in browser.page_source, message="the save")
    session.expire_all()
    stored = session.get(Shop, new.shop.id).prompt
    assert {k: stored[k] for k in ("title", "yes", "no", "color", "position", "icon", "phone")} == {
        "title": "Never miss a restock", "yes": "Tell me", "no": "No thanks", "color": "#ffd400",
        "position": "bottom-right", "icon": "https://cdn.example/logo.png",
        "phone": {"position": "top", "title": "", "text": "Back-in-size alerts?"}}
    assert stored["after_pageviews"] == 2  # the timing is Settings', untouched

    # The form at a phone's width: one column, the preview below it, nothing wider than the screen.
    browser.set_window_size(390, 844)
    browser.get(live + "/admin/settings/soft-ask")
    wait_for(lambda: preview(browser), message="the preview at 390 px")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.save_screenshot(str(Path(shots) / "softask-designer-390.png"))
    by_css(browser, "#preview-phone").click()
    browser.execute_script("document.getElementById('softask-frame').scrollIntoView()")
    browser.save_screenshot(str(Path(shots) / "softask-designer-390-phone-frame.png"))


STOREFRONT = """
    var root = document.getElementById("pushcart-softask").shadowRoot, box = root.querySelector(".box");
    var r = box.getBoundingClientRect(), yes = getComputedStyle(root.querySelector(".yes"));
    var img = root.querySelector("img.icon");
    return {title: root.querySelector(".title").innerText, text: root.querySelector(".text").innerText,
            yes: root.querySelector(".yes").innerText, no: root.querySelector(".no").innerText,
            background: yes.backgroundColor, color: yes.color, left: Math.round(r.left), top: Math.round(r.top),
            right: Math.round(document.documentElement.clientWidth - r.right),
            bottom: Math.round(document.documentElement.clientHeight - r.bottom),
            icon: img && img.getAttribute("src"), icon_loaded: !!(img && img.complete && img.naturalWidth > 0)};"""


def settled(driver) -> bool:
    """The soft-ask's fade-in is over (a screenshot before it would show it half transparent)."""
    return driver.execute_script("""var box = document.getElementById("pushcart-softask").shadowRoot.querySelector(".box");
        return getComputedStyle(box).opacity === "1" && box.getAnimations().length === 0;""")


def test_a_designed_soft_ask_shows_on_the_storefront_as_designed_on_a_computer_and_a_phone(
        storefront, browser, session, clock, shots):  # noqa: F811
    shop = session.scalars(sa.select(Shop).where(Shop.public_key == storefront.public_key)).one()
    icon = storefront.base + "/demo/static/linen-shirt.svg"
    save_design(shop, {"title": "Hello from Demo", "text": "A note when your cart waits or your order ships?",
                       "yes": "Sure", "no": "Later", "color": "#0b6e4f", "position": "bottom-right", "icon": icon,
                       "phone": {"position": "top", "title": "", "text": "Cart and order notes?"}})
    shop.prompt = {**shop.prompt, "after_pageviews": 0}
    session.commit()

    browser.set_window_size(1280, 860)
    browser.get(storefront.base + "/demo/")
    widget_ready(browser)
    status(browser)
    wait_for(lambda: soft_ask(browser), message="the soft-ask at 1280 px")
    look = wait_for(lambda: (lambda x: x if x["icon_loaded"] else None)(browser.execute_script(STOREFRONT)),
                    message="the icon to load")
    assert {k: look[k] for k in ("title", "text", "yes", "no", "background", "color", "right", "bottom", "icon")} == {
        "title": "Hello from Demo", "text": "A note when your cart waits or your order ships?", "yes": "Sure",
        "no": "Later", "background": "rgb(11, 110, 79)", "color": "rgb(255, 255, 255)", "right": 16, "bottom": 16,
        "icon": icon}
    wait_for(lambda: settled(browser), message="the fade-in")
    browser.save_screenshot(str(Path(shots) / "softask-storefront-1280.png"))

    # It took no focus; a keyboard user moves into it from a link, Escape closes it, remembers it
    # as "Later" and gives the focus back to that link.
    assert browser.execute_script("return document.activeElement === document.body")
    browser.execute_script("""document.getElementById('cart-link').focus();
        document.getElementById('pushcart-softask').shadowRoot.querySelector('.no').focus();""")
    from selenium.webdriver.common.keys import Keys
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(lambda: soft_ask(browser) is None, message="Escape to close the soft-ask")
    assert browser.execute_script("return document.activeElement.getAttribute('href')").endswith("/demo/cart")
    assert browser.execute_script("return +localStorage.getItem('pushcart_dismissed_until') > Date.now()")
    browser.execute_script("localStorage.removeItem('pushcart_dismissed_until')")

    # A phone: the phone's text at the top, across the screen but for 8 px each side.
    browser.set_window_size(390, 844)
    browser.get(storefront.base + "/demo/products/linen-shirt")
    widget_ready(browser)
    wait_for(lambda: soft_ask(browser), message="the soft-ask at 390 px")
    phone = browser.execute_script(STOREFRONT)
    width = browser.execute_script("return innerWidth")
    assert (phone["text"], phone["title"], phone["top"], phone["left"], phone["right"]) == (
        "Cart and order notes?", "Hello from Demo", 8, 8, 8), (phone, width)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width  # no overflow
    wait_for(lambda: settled(browser), message="the fade-in")
    browser.save_screenshot(str(Path(shots) / "softask-storefront-390.png"))
    # With reduced motion it appears without the fade.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]})
    browser.execute_script("localStorage.removeItem('pushcart_dismissed_until')")
    browser.get(storefront.base + "/demo/")
    widget_ready(browser)
    wait_for(lambda: soft_ask(browser), message="the soft-ask with reduced motion")
    assert browser.execute_script("""return getComputedStyle(document.getElementById("pushcart-softask")
        .shadowRoot.querySelector(".box")).animationName""") == "none"
