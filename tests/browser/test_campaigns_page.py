"""The Campaigns pages in a real headless Chromium: write a campaign with the segment builder,
preview it, send it, read its figures after the dispatcher ran, and cancel another one.

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Campaign, Push
from server.planning import campaigns as planner
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import XSS, all_css, by_css, fits_width, live, log_in, no_alert, shots  # noqa: F401
from tests.factories import make_shop, make_subscription, make_visitor

pytestmark = pytest.mark.browser


def full_page(browser, path, width=1280):
    """A screenshot of the whole page at ``width``, then back to the usual window."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, max(900, height + 120))
    browser.save_screenshot(path)
    browser.set_window_size(1280, 900)


def test_write_preview_send_and_cancel_a_campaign(live, browser, session, clock, shots):  # noqa: F811
    new = make_shop(session, clock.now(), name="Linen & Co", origins=["https://shop.example"])
    for name, locale in (("Jonas", "de-DE"), ("Lea", "de-AT"), (XSS, "de-CH"), ("Marie", "fr-FR")):
        make_subscription(session, make_visitor(session, new.shop.id, clock.now(), first_name=name, locale=locale),
                          clock.now())
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/campaigns")
    assert "No campaigns yet." in by_css(browser, "#campaign-list").text
    by_css(browser, "#new-campaign").click()
    by_css(browser, "#name").send_keys("Sommerschlussverkauf")
    by_css(browser, "#title").send_keys("Hallo {{ first_name }}!")
    by_css(browser, "#body").send_keys("Bis zu 50 % bei {{ shop_name }}")
    by_css(browser, "#url").send_keys("https://shop.example/sale")
    by_css(browser, "#seg_locale").click()
    by_css(browser, 'input[name="seg_locale_prefix"]').send_keys("de")
    by_css(browser, "#rate_per_minute").send_keys("600")
    by_css(browser, "#save-campaign").click()
    wait_for(lambda: "saved as a draft" in by_css(browser, ".flash-ok").text, message="the draft saved")

    by_css(browser, "#preview-campaign").click()
    wait_for(lambda: all_css(browser, "#preview-audience"), message="the preview")
    assert by_css(browser, "#preview-audience").text == "3"
    assert by_css(browser, '#preview-notification [data-field="title"]').text == "Hallo Jonas!"
    assert no_alert(browser)
    assert fits_width(browser)
    full_page(browser, str(shots / "campaign-preview-laptop.png"))

    by_css(browser, "#send-campaign").click()  # "Now" is ticked
    wait_for(lambda: "Sending" in by_css(browser, ".flash-ok").text, message="the send")
    session.expire_all()
    campaign = session.scalars(sa.select(Campaign)).one()
    planner.sweep(session, clock.now())  # the dispatcher's sweep plans the rows
    for row in session.scalars(sa.select(Push)):
        row.status, row.sent_at = "sent", clock.now()
    session.commit()
    browser.get(live + f"/admin/campaigns/{campaign.id}")
    figures = {el.get_attribute("data-figure"): el.text for el in all_css(browser, "[data-figure]")}
    assert (figures["targeted"], figures["planned"], figures["sent"], figures["ctr"]) == ("3", "3", "3", "0.0 %")
    assert by_css(browser, "#cancel-campaign")  # still "sending" until the next pass finds every row final
    browser.get(live + "/admin/campaigns")
    row = by_css(browser, f'tr[data-campaign="{campaign.id}"]')
    assert "Sommerschlussverkauf" in row.text and "sending" in row.text
    browser.save_screenshot(str(shots / "campaigns-list-laptop.png"))
    browser.set_window_size(390, 844)
    browser.get(live + f"/admin/campaigns/{campaign.id}")
    assert fits_width(browser), "the campaign page must not scroll sideways on a phone"
    full_page(browser, str(shots / "campaign-phone.png"), width=390)

    # A second one, scheduled for tomorrow, then cancelled.
    browser.get(live + "/admin/campaigns/new")
    by_css(browser, "#name").send_keys("Later")
    by_css(browser, "#title").send_keys("Soon")
    by_css(browser, "#save-campaign").click()
    wait_for(lambda: all_css(browser, "#send-form"), message="the second draft")
    by_css(browser, 'input[name="mode"][value="at"]').click()
    browser.execute_script("document.getElementById('send_at').value = arguments[0]",
                           (clock.now().replace(microsecond=0)).strftime("2026-12-31T09:00"))
    by_css(browser, "#send-campaign").click()
    wait_for(lambda: "Scheduled." in by_css(browser, ".flash-ok").text, message="the schedule")
    assert by_css(browser, "#campaign-status").text == "scheduled"
    by_css(browser, "#cancel-campaign").click()
    wait_for(lambda: "Cancelled" in by_css(browser, ".flash-ok").text, message="the cancel")
    assert by_css(browser, "#campaign-status").text == "cancelled"
