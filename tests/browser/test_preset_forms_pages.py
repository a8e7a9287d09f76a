"""The Events page's preset forms in Chromium: default texts a merchant can read, delays as a number and
a unit, and a preview whose sample image is a file the app serves (it loads).

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from selenium.webdriver.support.ui import Select

from server.core.models import PresetSetting
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.factories import make_shop

pytestmark = pytest.mark.browser


def test_the_browse_card_reads_plainly_loads_its_sample_image_and_saves_delays_by_unit(live, browser, session, clock,
                                                                                      shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/events")
    assert by_css(browser, "#title-browse_abandonment").get_attribute("value") == \
        '{{ product_title | default("Your cart") }} is waiting for you'
    wait_for(lambda: by_css(browser, '#preview-browse_abandonment [data-field="title"]').text
             == "Linen Shirt is waiting for you", message="the preview title")
    image = by_css(browser, '#preview-browse_abandonment [data-field="image"]')
    wait_for(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image),
             message="the sample image to load")
    assert image.is_displayed()
    assert by_css(browser, "#delay-browse_abandonment-0").get_attribute("value") == "1"
    assert Select(all_css(browser, '#browse_abandonment select[name="delay_unit_0"]')[0]).first_selected_option.text == "days"
    value = by_css(browser, "#delay-browse_abandonment-0")
    value.clear()
    value.send_keys("6")
    Select(by_css(browser, '#browse_abandonment select[name="delay_unit_0"]')).select_by_visible_text("hours")
    browser.execute_script("document.getElementById('browse_abandonment').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-browse-laptop.png"))
    by_css(browser, '[data-save="browse_abandonment"]').click()
    wait_for(lambda: "Browse & cart abandonment saved." in by_css(browser, ".flash-ok").text, message="the save")
    session.expire_all()
    saved = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "browse_abandonment")).one()
    assert saved.delays == [6 * 3600]
    assert len(all_css(browser, "#checkout_recovery .delay-row")) == 5
    browser.set_window_size(390, 844)
    browser.get(live + "/admin/events#checkout_recovery")
    assert fits_width(browser)
    browser.execute_script("document.getElementById('delays-checkout_recovery').scrollIntoView()")
    browser.save_screenshot(str(shots / "events-delays-phone.png"))
