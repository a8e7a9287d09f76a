"""A running campaign's page in Chromium: the figures and the bar move without a reload while pushes go
out, and the page shows the campaign's end (status, no Cancel) when it is sent.

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Campaign, Push
from server.planning import campaigns as planner
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import by_css, fits_width, live, log_in, shots  # noqa: F401
from tests.factories import make_shop, make_subscription, make_visitor

pytestmark = pytest.mark.browser


def test_the_bar_and_counts_follow_the_send_without_a_reload(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Linen & Co")
    for _ in range(4):
        make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now())
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/campaigns/new")
    by_css(browser, "#name").send_keys("Sale")
    by_css(browser, "#title").send_keys("Sale at {{ shop_name }}")
    by_css(browser, "#rate_per_minute").send_keys("2")
    by_css(browser, "#save-campaign").click()
    wait_for(lambda: "saved as a draft" in by_css(browser, ".flash-ok").text, message="the draft saved")
    by_css(browser, "#send-campaign").click()
    wait_for(lambda: "Sending" in by_css(browser, ".flash-ok").text, message="the send")
    assert by_css(browser, "#campaign-bar").get_attribute("value") == "0"
    assert "can no longer be changed" in by_css(browser, "#campaign-readonly").text
    browser.execute_script("window.notReloaded = true")

    session.expire_all()
    planner.sweep(session, clock.now())
    for row in session.scalars(sa.select(Push).order_by(Push.id).limit(2)):
        row.status, row.sent_at = "sent", clock.now()
    session.commit()
    wait_for(lambda: by_css(browser, "#campaign-bar").get_attribute("value") == "50", message="the bar at 50 %")
    assert by_css(browser, '#campaign-stats [data-figure="sent"]').text == "2"
    assert "about 1 min left at 2 a minute" in by_css(browser, "#campaign-live-text").text
    assert not by_css(browser, "#campaign-progress").is_displayed(), "the stale 'planning starts' line gives way"
    assert browser.execute_script("return window.notReloaded === true"), "updated in place"
    browser.save_screenshot(str(shots / "campaign-live-laptop.png"))
    browser.set_window_size(390, 844)
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "campaign-live-phone.png"))

    session.execute(sa.update(Push).values(status="sent", sent_at=clock.now()))
    planner.finish_sent(session, clock.now())
    session.commit()
    assert session.scalars(sa.select(Campaign.status)).one() == "sent"
    wait_for(lambda: by_css(browser, "#campaign-status").text == "sent", message="the sent status")
    assert by_css(browser, "#campaign-bar").get_attribute("value") == "100"
    assert not by_css(browser, "#cancel-campaign").is_displayed()
    assert browser.execute_script("return window.notReloaded === true")
