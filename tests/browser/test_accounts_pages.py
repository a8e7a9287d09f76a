"""Accounts in a real headless Chromium: an owner logs in with e-mail and password, invites a
marketer, the marketer accepts in a second browser, sees no owner's nav item and gets 403 on a
secret URL; the owner signs the marketer out everywhere and the marketer's next request lands
on the log-in page.

Screenshots (laptop and phone widths) go under ``$PUSHCART_SCREENSHOTS`` when set, else the
test's temporary directory.
"""
from __future__ import annotations

import pytest

from tests.accounts_support import PASSWORD, make_user
from tests.browser.chromium import start_chromium, wait_for
from tests.browser.test_dashboard_pages import all_css, by_css, fits_width, live, shots  # noqa: F401 (fixtures)
from tests.factories import make_shop

pytestmark = pytest.mark.browser

OWNERS_NAV = {"Install", "Team", "Audit log"}


def log_in_with_password(driver, base: str, email: str, password: str) -> None:
    """Log in through the e-mail form, as a member of the team would."""
    driver.get(base + "/admin/")
    wait_for(lambda: driver.current_url.endswith("/admin/login"), message="the log-in page")
    by_css(driver, "#email").send_keys(email)
    by_css(driver, "#password").send_keys(password)
    by_css(driver, "#login-password").click()
    wait_for(lambda: driver.current_url.endswith("/admin/"), message="the overview after log-in")


def nav_labels(driver) -> set[str]:
    return {a.text for a in all_css(driver, ".nav a")}


def both_widths(driver, shots, name: str, reload: bool = True) -> None:
    """Screenshots at 1280 and 390 px, the page loaded at each width (``reload=False`` for the
    answer to a form): it never scrolls sideways."""
    url = driver.current_url
    for width, height, suffix in ((1280, 900, "laptop"), (390, 844, "phone")):
        driver.set_window_size(width, height)
        if reload:
            driver.get(url)
        wait_for(lambda: fits_width(driver), timeout=5, message=f"{name} to fit {width} px")
        driver.save_screenshot(str(shots / f"{name}-{suffix}.png"))
    driver.set_window_size(1280, 900)


def test_owner_invites_a_marketer_who_is_kept_from_secrets_and_signed_out(live, browser, session, clock, shots,
                                                                           tmp_path):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    make_user(session, new.shop, clock.now(), "olga@acme.example", "owner")

    browser.set_window_size(1280, 900)
    browser.get(live + "/admin/login")
    both_widths(browser, shots, "login")
    log_in_with_password(browser, live, "olga@acme.example", PASSWORD)
    assert OWNERS_NAV <= nav_labels(browser)
    assert "olga@acme.example" in by_css(browser, "#whoami").text

    browser.get(live + "/admin/team")
    by_css(browser, "#invite-email").send_keys("mark@acme.example")
    by_css(browser, "#invite-role").send_keys("Marketer")
    by_css(browser, "#send-invite").click()
    wait_for(lambda: all_css(browser, "#invite-link"), message="the invitation link")
    link = by_css(browser, "#invite-link").get_attribute("value")
    assert "/admin/invite/" in link and "no mail server" in by_css(browser, "#invite-link-card").text
    both_widths(browser, shots, "team-invited", reload=False)

    second = start_chromium(tmp_path / "second-profile")  # the invitee's own browser
    try:
        second.set_window_size(1280, 900)
        second.get(link)
        assert "a marketer" in by_css(second, "#invite-role").text
        both_widths(second, shots, "invite-accept")
        by_css(second, "#password").send_keys("marketing rocks 2026")
        by_css(second, "#password_again").send_keys("marketing rocks 2026")
        by_css(second, "#accept").click()
        wait_for(lambda: second.current_url.endswith("/admin/"), message="the overview after accepting")
        assert "mark@acme.example · Marketer" in by_css(second, "#whoami").text
        assert not OWNERS_NAV & nav_labels(second) and {"Campaigns", "Settings"} <= nav_labels(second)
        both_widths(second, shots, "marketer-overview")
        by_css(second, "#whoami").click()  # their own account page: role, sessions, sign out everywhere
        wait_for(lambda: second.current_url.endswith("/admin/account"), message="the account page")
        assert by_css(second, "#account-role").text == "Marketer" and by_css(second, "#session-count").text == "1"
        both_widths(second, shots, "marketer-account")

        second.get(live + "/admin/connect/")  # the webhook secret's page
        assert by_css(second, "h1").text == "For owners only"
        assert "whsec_" not in second.page_source
        both_widths(second, shots, "marketer-403")
        second.get(live + "/admin/settings")
        assert not all_css(second, "#platform_secret")

        browser.get(live + "/admin/team")
        row = by_css(browser, 'tr[data-email="mark@acme.example"]')
        assert row.find_element("css selector", ".sessions").text == "1"  # one live session
        row.find_element("css selector", ".sign-out-member").click()
        wait_for(lambda: "signed out everywhere" in browser.page_source, message="the owner's confirmation")
        both_widths(browser, shots, "team-members", reload=False)

        second.get(live + "/admin/campaigns")
        wait_for(lambda: second.current_url.endswith("/admin/login"), message="the marketer sent to log in")
    finally:
        second.quit()

    browser.get(live + "/admin/audit")
    text = by_css(browser, "#audit").text
    assert "invited as marketer" in text and "joined as marketer" in text and "signed out everywhere" in text
    both_widths(browser, shots, "audit")
