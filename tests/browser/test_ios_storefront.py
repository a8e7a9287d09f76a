"""The demo shop as Safari on an iPhone shows it, emulated in a real headless Chromium: the
user agent is an iPhone's, a tab has no ``PushManager`` (as Safari's tab has none), and the
Home Screen app is ``display-mode: standalone`` or ``navigator.standalone``. DevTools' emulated
media does not take ``display-mode`` (this Chromium ignores it), so ``matchMedia`` is wrapped to
match it, before any page script runs. The demo shop links a web app manifest."""
from __future__ import annotations

import pytest

from tests.browser.chromium import wait_for
from tests.browser.test_storefront import soft_ask, storefront, widget_ready  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.4 Mobile/15E148 Safari/604.1")
COACHING = "Add this shop to your Home Screen: Share, then Add to Home Screen, to get notifications"


def as_iphone(driver, *, in_a_tab: bool, standalone_flag: bool = False, display_mode: str | None = None) -> None:
    """Make the next documents look like Safari on an iPhone (in a tab, or a Home Screen app)."""
    driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": IPHONE, "platform": "iPhone"})
    source = ""
    if in_a_tab:
        source += "delete window.PushManager;"
    if standalone_flag:
        source += "Object.defineProperty(navigator, 'standalone', {value: true});"
    if display_mode:
        source += ("var mm = window.matchMedia.bind(window); window.matchMedia = function (q) {"
                   f"  return /display-mode:\\s*{display_mode}/.test(q) ? {{matches: true, media: q}} : mm(q); }};")
    if source:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})


def second_page_view(driver, base: str):
    """The soft-ask's place appears from the second page view on (the shop's default)."""
    driver.get(base + "/demo/")
    widget_ready(driver)
    assert soft_ask(driver) is None
    driver.get(base + "/demo/cart")
    widget_ready(driver)
    return wait_for(lambda: soft_ask(driver), message="the soft-ask's place on the second page view")


def texts(driver) -> dict:
    return driver.execute_script("""
        var root = document.getElementById("pushcart-softask").shadowRoot, part = function (s) {
          var e = root.querySelector(s); return e ? e.textContent : null; };
        return {text: part("p"), yes: part(".yes"), no: part(".no"), standalone: matchMedia("(display-mode: standalone)").matches};""")


def test_safari_in_a_tab_on_an_iphone_gets_add_to_home_screen_coaching(storefront, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    as_iphone(browser, in_a_tab=True)
    box = second_page_view(browser, storefront.base)
    assert texts(browser) == {"text": COACHING, "yes": None, "no": "OK", "standalone": False}
    box.find_element(By.CSS_SELECTOR, "button.no").click()
    wait_for(lambda: soft_ask(browser) is None, message="the coaching to close")
    browser.get(storefront.base + "/demo/")
    widget_ready(browser)
    assert soft_ask(browser) is None, "closed coaching stays closed for dismiss_days"


@pytest.mark.parametrize("home", [{"display_mode": "standalone"}, {"standalone_flag": True}])
def test_the_home_screen_app_on_an_iphone_gets_the_ordinary_soft_ask(storefront, browser, home):  # noqa: F811
    as_iphone(browser, in_a_tab=False, **home)
    second_page_view(browser, storefront.base)
    shown = texts(browser)
    assert shown["yes"] == "Yes, notify me" and shown["text"] != COACHING
    assert shown["standalone"] is bool(home.get("display_mode"))
