"""Merge tags with fallbacks in a real headless Chromium: the insert-variable menu on the campaign and
events forms, and the campaign preview's warning for a sampled audience where names are missing.

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set.
"""
from __future__ import annotations

import pytest
from selenium.webdriver.support.ui import Select

from tests.browser.chromium import wait_for
from tests.browser.test_campaigns_page import full_page
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.factories import make_shop, make_subscription, make_visitor

pytestmark = pytest.mark.browser


def test_a_campaign_gets_a_fallback_from_the_menu_after_the_preview_warns(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co")
    for name in ("Jonas", None, None, None):
        make_subscription(session, make_visitor(session, new.shop.id, clock.now(), first_name=name), clock.now())
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/campaigns/new")
    by_css(browser, "#name").send_keys("Hello")
    by_css(browser, "#title").send_keys("Hi {{ first_name }}")
    by_css(browser, "#save-campaign").click()
    wait_for(lambda: "saved as a draft" in by_css(browser, ".flash-ok").text, message="the draft saved")
    by_css(browser, "#preview-campaign").click()
    warning = wait_for(lambda: all_css(browser, ".merge-warning"), message="the warning")[0]
    assert "first_name is empty for 3 of 4 sampled subscribers: set a fallback" in warning.text
    full_page(browser, str(shots / "campaign-warning-laptop.png"))

    title = by_css(browser, "#title")
    title.clear()
    title.send_keys("Hi ")
    menu = by_css(browser, "#merge-tags")
    assert menu.is_displayed()
    Select(by_css(browser, "#merge-tags-variable")).select_by_value("first_name")
    assert by_css(browser, "#merge-tags-fallback").get_attribute("value") == "there"  # the suggestion
    by_css(browser, "#merge-tags [data-merge-insert]").click()
    assert title.get_attribute("value") == 'Hi {{ first_name | default("there") }}'
    by_css(browser, "#preview-campaign").click()
    # The first preview's "sampled" line is still there until the second answer replaces it: wait
    # for the answer itself (the warning gone), not for an element the first one left.
    wait_for(lambda: all_css(browser, ".merge-warning") == [], message="the second preview, without the warning")
    assert all_css(browser, "#preview-sampled")
    shown = {el.text for el in all_css(browser, '#campaign-preview [data-field="title"]')}
    assert shown == {"Hi there", "Hi Jonas"}
    full_page(browser, str(shots / "campaign-fallback-laptop.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser)
    full_page(browser, str(shots / "campaign-fallback-phone.png"), width=390)


def test_the_events_menu_inserts_at_the_cursor_and_the_preview_follows(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/events")
    body = by_css(browser, "#body-welcome")
    body.clear()
    body.send_keys("Welcome, !")
    browser.execute_script("arguments[0].setSelectionRange(9, 9)", body)  # between "Welcome, " and "!"
    Select(by_css(browser, "#merge-tags-welcome-variable")).select_by_value("product_title")
    fallback = by_css(browser, "#merge-tags-welcome-fallback")
    fallback.clear()
    fallback.send_keys('the "best" pick')
    by_css(browser, "#merge-tags-welcome [data-merge-insert]").click()
    assert body.get_attribute("value") == 'Welcome, {{ product_title | default("the \\"best\\" pick") }}!'
    wait_for(lambda: by_css(browser, '#preview-welcome [data-field="body"]').text == "Welcome, Linen Shirt!",
             message="the preview to follow the inserted variable")
    browser.execute_script("document.getElementById('welcome').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-merge-laptop.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser)
    browser.execute_script("document.getElementById('merge-tags-welcome').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-merge-phone.png"))
