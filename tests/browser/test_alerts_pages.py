"""The alerts and guardrails on the dashboard, in a real headless Chromium: the Overview's
engagement block and warnings, the two alert cards on the Events page, the alert settings.

Screenshots are saved under ``$PUSHCART_SCREENSHOTS`` when set, else the test's temporary directory.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import PresetSetting, Shop
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.factories import make_shop
from tests.integration.planning.test_alerts_guardrails import busy_shop  # noqa: F401 (the hand-counted shop)

pytestmark = pytest.mark.browser


def test_the_overview_warns_in_plain_words_and_shows_the_engagement(live, browser, busy_shop, shots):
    log_in(browser, live, busy_shop.admin_token)
    warnings = {el.get_attribute("data-warning"): el.text for el in all_css(browser, ".guardrail-warning")}
    assert set(warnings) == {"low_ctr", "unengaged"}
    assert warnings["low_ctr"].startswith("Repurchase: only 0.5 % of its 200 pushes were clicked.")
    assert "3 of your 4 subscribers clicked none of their last 10 pushes." in warnings["unengaged"]
    assert by_css(browser, '[data-guard="sent_per_subscriber"]').text == "7.50"
    assert by_css(browser, '[data-guard="unengaged"]').text == "3"
    assert by_css(browser, '[data-guard="pause"]').text == "off"
    kinds = [tr.get_attribute("data-kind") for tr in all_css(browser, "#by-kind tbody tr")]
    assert kinds[-3:] == ["back_in_stock", "price_drop", "campaign"]
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "alerts-overview-laptop.png"))
    browser.execute_script("document.getElementById('guardrails').scrollIntoView()")
    browser.save_screenshot(str(shots / "alerts-overview-guardrails.png"))
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser), "the overview must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "alerts-overview-phone.png"))


def test_the_alert_cards_preview_save_and_switch(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/events")
    assert by_css(browser, "#back_in_stock h2").text == "Back in stock"
    assert by_css(browser, "#price_drop h2").text == "Price drop"
    preview_title = '#preview-price_drop [data-field="title"]'
    wait_for(lambda: by_css(browser, preview_title).text == "Price drop: Linen Shirt", message="the first preview")
    wait_for(lambda: by_css(browser, '#preview-price_drop [data-field="body"]').text
             == "Linen Shirt is now $49.00 (was $59.00).", message="the sample prices")
    title = by_css(browser, "#title-price_drop")
    title.clear()
    title.send_keys("{{ product_title }}: {{ old_price }} → {{ product_price }}")
    wait_for(lambda: by_css(browser, preview_title).text == "Linen Shirt: $59.00 → $49.00",
             message="the preview to follow the typed template")
    browser.execute_script("document.getElementById('price_drop').scrollIntoView()")
    browser.save_screenshot(str(shots / "alerts-events-laptop.png"))
    by_css(browser, '[data-save="price_drop"]').click()
    wait_for(lambda: "Price drop saved." in browser.page_source, message="the save")
    by_css(browser, '[data-toggle="back_in_stock"]').click()
    wait_for(lambda: by_css(browser, "#back_in_stock .state").text == "Off", message="back in stock to show Off")
    session.expire_all()
    settings = {s.kind: s for s in session.scalars(sa.select(PresetSetting).where(PresetSetting.shop_id == new.shop.id))}
    assert settings["price_drop"].title == "{{ product_title }}: {{ old_price }} → {{ product_price }}"
    assert settings["back_in_stock"].enabled is False
    browser.set_window_size(390, 844)
    browser.get(live + "/admin/events#back_in_stock")
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "alerts-events-phone.png"))


def test_the_alert_settings_are_saved_from_the_form(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/settings")
    for name, value in (("alert_min_drop_percent", "15"), ("alert_window_days", "3"), ("pause_unengaged_after", "10")):
        field = by_css(browser, f'[name="{name}"]')
        field.clear()
        field.send_keys(value)
    browser.execute_script("document.getElementById('alerts-settings').scrollIntoView()")
    browser.save_screenshot(str(shots / "alerts-settings.png"))
    by_css(browser, "#save-settings").click()
    wait_for(lambda: "Settings saved." in browser.page_source, message="the save")
    session.expire_all()
    shop = session.get(Shop, new.shop.id)
    assert (shop.alert_min_drop_percent, shop.alert_window_days, shop.pause_unengaged_after) == (15, 3, 10)
    assert by_css(browser, '[name="pause_unengaged_after"]').get_attribute("value") == "10"
    # A pause of 2 is refused in plain words and nothing changes.
    field = by_css(browser, '[name="pause_unengaged_after"]')
    field.clear()
    field.send_keys("2")
    by_css(browser, "#save-settings").click()
    wait_for(lambda: "Settings not saved" in browser.page_source, message="the refusal")
    session.expire_all()
    assert session.get(Shop, new.shop.id).pause_unengaged_after == 10
