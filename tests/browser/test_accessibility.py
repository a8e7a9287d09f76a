"""Accessibility of the dashboard's main pages: axe-core (npm, pinned in package.json) run in Chromium on
each page, at laptop and phone widths, finds no serious or critical violation.

The check needs ``node_modules/axe-core`` (``npm ci``); ``AXE_CORE_JS`` may name another copy of
``axe.min.js``. Without either the test is skipped, like the other browser tests without Chromium.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.merchant import campaign_admin as campaigns, experiment_admin as experiments, onsite_admin as onsite
from tests.browser.test_dashboard_pages import live, log_in  # noqa: F401 (a fixture)
from tests.dashboard_seed import make_event, make_push
from tests.factories import make_shop, make_subscription, make_test_device, make_visitor

pytestmark = pytest.mark.browser

AXE = Path(os.environ.get("AXE_CORE_JS") or Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js")
PAGES = ["/admin/", "/admin/events", "/admin/campaigns", "/admin/campaigns/new", "/admin/coupons", "/admin/onsite",
         "/admin/onsite/new", "/admin/pushes", "/admin/visitors", "/admin/experiments", "/admin/lift", "/admin/install",
         "/admin/settings", "/admin/settings/soft-ask", "/admin/team", "/admin/audit", "/admin/account"]
SERIOUS = ("serious", "critical")


def violations(driver) -> list[dict]:
    """axe-core's serious and critical violations on the current page (rule, impact, first targets)."""
    result = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(function (r) { done(r.violations.map(function (v) {"
        "  return {id: v.id, impact: v.impact, help: v.help,"
        "          targets: v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); })}; })); })"
        ".catch(function (e) { done([{id: 'axe-error', impact: 'critical', help: String(e), targets: []}]); });")
    return [v for v in result if v["impact"] in SERIOUS]


def test_the_main_pages_have_no_serious_accessibility_violation(live, browser, session, clock):
    if not AXE.is_file():
        pytest.skip("axe-core is not installed (npm ci installs it)")
    source = AXE.read_text()
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    visitor = make_visitor(session, new.shop.id, clock.now(), first_name="Jonas")
    make_subscription(session, visitor, clock.now())
    make_event(session, visitor, "product_view", clock.now(), product={"title": "Linen Shirt", "url": "https://shop.example/p"})
    make_push(session, visitor, "browse_abandonment", clock.now())
    running = campaigns.create_campaign(session, new.shop, campaigns.CampaignIn(name="Sale", title="Hi {{ first_name }}",
                                                                                 rate_per_minute=10), clock.now())
    campaigns.send_campaign(session, new.shop, running.id, campaigns.SendIn(mode="now"), clock.now())
    message = onsite.create_message(session, new.shop, onsite.parse_message(onsite.seed_template(session, new.shop)),
                                    clock.now())
    # A test device (Settings' list) and an experiment (its variants' test buttons).
    make_test_device(session, new.shop.id, clock.now(), name="Office laptop")
    experiments.create_experiment(session, new.shop, {"kind": "welcome", "name": "Warmer",
                                                      "variants": [{"title": "Hi"}, {"title": "Hello"}]}, clock.now())
    session.commit()
    found = {}

    def check(path: str, width: int) -> None:
        browser.get(live + path)
        browser.execute_script(source)
        serious = violations(browser)
        if serious:
            found[f"{path} at {width} px"] = serious

    check("/admin/login", 1280)
    log_in(browser, live, new.admin_token)
    for width, height in ((1280, 860), (390, 844)):
        browser.set_window_size(width, height)
        # a running campaign (the live bar), an on-site message's form and report, the records' filters
        for path in PAGES + [f"/admin/campaigns/{running.id}", f"/admin/onsite/{message.id}", "/admin/pushes?q=x&status=sent"]:
            check(path, width)
    assert found == {}, "\n".join(f"{page}: {v}" for page, vs in found.items() for v in vs)
