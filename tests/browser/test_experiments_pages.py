"""The Experiments and Lift pages in a real headless Chromium: read results, apply a winner,
start an experiment through the form, read the lift sentence, set holdouts; escaping; phone width.

Screenshots go under ``$PUSHCART_SCREENSHOTS`` when set, else the test's temporary directory.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import Experiment, Holdout, PresetSetting
from tests.browser.chromium import wait_for
from tests.browser.test_dashboard_pages import XSS, all_css, by_css, fits_width, live, log_in, no_alert, shots  # noqa: F401
from tests.factories import make_shop
from tests.integration.merchant.test_experiments import seed_lift_scenario, seed_results

pytestmark = pytest.mark.browser


def test_read_an_experiments_results_and_apply_the_winner(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    experiment = Experiment(shop_id=new.shop.id, kind="welcome", name=f"Welcome {XSS}", status="running",
                            slice_percent=20, goal="clicks", confidence=0.95, min_sends=200, auto_apply=False,
                            variants=[{"key": "A", "title": "Hi there", "body": "", "url": "", "image": ""},
                                      {"key": "B", "title": f"Hello {XSS}", "body": "", "url": "", "image": ""}],
                            created_at=clock.now(), updated_at=clock.now())
    session.add(experiment)
    session.flush()
    seed_results(session, clock, new.shop, experiment.id, {"A": (200, 30), "B": (200, 50)})
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/experiments")
    card = by_css(browser, f"#experiment-{experiment.id}")
    rows = {tr.get_attribute("data-variant"): [td.text for td in tr.find_elements("css selector", "td")]
            for tr in card.find_elements("css selector", "tbody tr")}
    assert rows["A"][2:5] == ["200", "30", "15.0 %"] and rows["B"][2:5] == ["200", "50", "25.0 %"]
    assert rows["B"][1] == f"Hello {XSS}" and no_alert(browser)  # shown as text
    assert "Version B wins" in card.find_element("css selector", "[data-verdict]").text
    assert "p = 0.0124" in card.find_element("css selector", "[data-verdict]").text
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "experiments-laptop.png"))
    card.find_element("css selector", "[data-apply]").click()
    wait_for(lambda: "now goes to everyone" in by_css(browser, ".flash-ok").text, message="the apply flash")
    assert by_css(browser, f"#experiment-{experiment.id} [data-status]").text == "applied"
    session.expire_all()
    assert session.scalars(sa.select(PresetSetting.title).where(
        PresetSetting.shop_id == new.shop.id, PresetSetting.kind == "welcome")).one() == f"Hello {XSS}"
    browser.set_window_size(390, 844)
    browser.refresh()
    assert fits_width(browser), "the experiments page must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "experiments-phone.png"))


def test_start_an_experiment_through_the_form(live, browser, session, clock):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/experiments")
    assert by_css(browser, "#no-experiments")
    by_css(browser, "#exp-name").send_keys("Shorter title")
    by_css(browser, "#exp-A-title").send_keys("Come back, {{ first_name }}")
    by_css(browser, "#exp-B-title").send_keys("Your cart misses you")
    by_css(browser, "#exp-start").click()
    wait_for(lambda: "started" in by_css(browser, ".flash-ok").text, message="the start flash")
    session.expire_all()
    started = session.scalars(sa.select(Experiment).where(Experiment.shop_id == new.shop.id)).one()
    assert (started.name, started.kind, started.slice_percent, [v["title"] for v in started.variants]) == (
        "Shorter title", "welcome", 20, ["Come back, {{ first_name }}", "Your cart misses you"])
    assert "Not yet" in by_css(browser, f"#experiment-{started.id} [data-verdict]").text
    # A broken template is refused with the reason, and nothing is stored.
    by_css(browser, "#exp-kind").send_keys("Repurchase")
    by_css(browser, "#exp-A-title").send_keys("{{ broken")
    by_css(browser, "#exp-B-title").send_keys("fine")
    by_css(browser, "#exp-start").click()
    wait_for(lambda: "not started" in by_css(browser, ".flash-error").text, message="the error flash")
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Experiment)) == 1


def test_read_the_lift_report_and_set_holdouts(live, browser, session, clock, shots):
    new = make_shop(session, clock.now(), name="Acme Outfitters")
    seed_lift_scenario(session, new.shop.id)
    session.commit()
    log_in(browser, live, new.admin_token)
    browser.get(live + "/admin/lift?kind=checkout_recovery&from=2026-03-01&to=2026-03-03")
    assert by_css(browser, "#lift-summary").text == (
        "Checkout recovery brought about 2 extra orders (95% CI -2 to 6) and $200.00 extra revenue "
        "(95% CI -$285.19 to $685.19). The interval includes zero: not yet distinguishable from no effect.")
    rows = {tr.get_attribute("data-group"): [td.text for td in tr.find_elements("css selector", "td")][1:]
            for tr in all_css(browser, "#lift-table tbody tr")}
    assert rows == {"treated": ["10", "6", "7", "600.00 USD", "60.0 %", "60.00"],
                    "holdout": ["10", "4", "4", "400.00 USD", "40.0 %", "40.00"]}
    assert fits_width(browser)
    browser.save_screenshot(str(shots / "lift-laptop.png"))
    field = by_css(browser, "#holdout-checkout_recovery")
    field.clear()
    field.send_keys("10")
    by_css(browser, "#holdouts-save").click()
    wait_for(lambda: "Holdouts saved" in by_css(browser, ".flash-ok").text, message="the holdouts flash")
    session.expire_all()
    assert session.scalars(sa.select(Holdout.percent).where(Holdout.kind == "checkout_recovery")).one() == 10
    assert by_css(browser, "#holdout-checkout_recovery").get_attribute("value") == "10"
    browser.set_window_size(390, 844)
    browser.get(live + "/admin/lift?kind=checkout_recovery&from=2026-03-01&to=2026-03-03")
    assert fits_width(browser), "the lift page must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "lift-phone.png"))
