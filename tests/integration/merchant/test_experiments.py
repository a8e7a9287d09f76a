"""A/B tests and holdouts through the real planner, the merchant API and ``dispatch --once``.

Holdout subscribers never receive the kind; variant pushes carry their variant's texts
(decrypted by ``web-push-testing``); results name a winner only when the stated test says so;
applying it changes what is planned next; the lift report agrees with a scenario counted by hand.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Experiment, Order, Push, PushStatus
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.planning import checkout_recovery, experiments, hooks
from tests.factories import dispatch, make_push, make_shop, make_subscription, make_visitor

pytestmark = pytest.mark.shop(name="Linen & Co")

ORIGIN = "https://shop.example"
VARIANTS = [{"title": "A: {{ shop_name }} says hi", "body": "Variant A body"},
            {"title": "B: hello from {{ shop_name }}", "body": "Variant B body", "url": "https://shop.example/new"}]


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def auth(new) -> dict[str, str]:
    return {"Authorization": f"Bearer {new.admin_token}"}





def subscribe(client, app, new_shop, web_push_testing, visitor_id: str) -> tuple[int, str]:
    """A browser subscribed at web-push-testing, posted through the collect API (plans the welcome)."""
    push_service = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    response = client.post(f"/v1/shops/{new_shop.public_key}/subscriptions", headers={"Origin": ORIGIN}, json={
        "visitor_id": visitor_id, "subscription": {"endpoint": push_service["endpoint"], "expirationTime": None,
                                                   "keys": push_service["keys"]}})
    assert response.status_code == 201, response.json
    return response.json["subscription_id"], push_service["clientHash"]


# --- the API -------------------------------------------------------------------------------------


def test_experiments_api_creates_reads_changes_and_validates(client, new_shop):
    url = "/v1/admin/experiments"
    assert client.get(url).status_code == 401
    created = client.post(url, headers=auth(new_shop), json={"kind": "welcome", "name": "Hello test",
                                                         "variants": VARIANTS, "slice_percent": 30})
    assert created.status_code == 201, created.json
    body = created.json
    assert (body["status"], body["slice_percent"], body["goal"], body["confidence"], body["min_sends"],
            body["auto_apply"]) == ("running", 30, "clicks", 0.95, 200, False)
    assert [v["key"] for v in body["variants"]] == ["A", "B"]
    assert client.get(f"{url}/{body['id']}", headers=auth(new_shop)).json["name"] == "Hello test"
    assert [e["id"] for e in client.get(url, headers=auth(new_shop)).json["items"]] == [body["id"]]
    changed = client.put(f"{url}/{body['id']}", headers=auth(new_shop),
                         json={"goal": "revenue", "confidence": 0.9, "auto_apply": True})
    assert (changed.json["goal"], changed.json["confidence"], changed.json["auto_apply"]) == ("revenue", 0.9, True)
    # One running experiment per kind; bad templates, too many variants, bad numbers: 422.
    second = client.post(url, headers=auth(new_shop), json={"kind": "welcome", "variants": VARIANTS})
    assert (second.status_code, second.json["error"]["code"]) == (422, "experiment_running")
    for bad in ({"kind": "repurchase", "variants": [{"title": "{{ oops"}, {"title": "x"}]},
                {"kind": "repurchase", "variants": [{"title": "x"}, {"url": "javascript:alert(1)"}]},
                {"kind": "repurchase", "variants": [{"title": str(i)} for i in range(5)]},
                {"kind": "repurchase", "variants": [{"title": "only one"}]},
                {"kind": "nope", "variants": VARIANTS},
                {"kind": "repurchase", "variants": VARIANTS, "slice_percent": 0},
                {"kind": "repurchase", "variants": VARIANTS, "goal": "likes"},
                {"kind": "repurchase", "variants": [{"title": ""}, {"title": "x"}]}):
        response = client.post(url, headers=auth(new_shop), json=bad)
        assert response.status_code == 422, (bad, response.json)
        assert set(response.json["error"]) == {"code", "message"}
        assert response.json["error"]["code"] != "experiment_running", bad
    assert client.get(f"{url}/9999", headers=auth(new_shop)).status_code == 404


@pytest.mark.parametrize("field", ["url", "image"])
@pytest.mark.parametrize("link", ["ftp://files.test/x", "javascript:alert(1)", "{{ shop_name }}"])
def test_a_variants_link_is_checked_like_the_presets(client, new_shop, field, link):
    preset = client.put("/v1/admin/events/welcome", headers=auth(new_shop), json={field: link})
    assert (preset.status_code, preset.json["error"]["code"]) == (422, "invalid_template")
    response = client.post("/v1/admin/experiments", headers=auth(new_shop),
                           json={"kind": "welcome", "variants": [{"title": "x"}, {field: link}]})
    assert (response.status_code, response.json["error"]["code"]) == (422, "invalid_template"), response.json
    assert response.json["error"]["message"].startswith(f"variants.1.{field}: must render to an http(s) URL")
    assert client.get("/v1/admin/experiments", headers=auth(new_shop)).json["items"] == []


def test_another_shops_experiment_is_not_found(client, session, clock, new_shop):
    other = make_shop(session, clock.now(), name="Other")
    session.commit()
    created = client.post("/v1/admin/experiments", headers=auth(other),
                          json={"kind": "welcome", "variants": VARIANTS}).json
    for method, path in (("get", ""), ("put", ""), ("get", "/results"), ("post", "/apply")):
        response = getattr(client, method)(f"/v1/admin/experiments/{created['id']}{path}", headers=auth(new_shop), json={})
        assert response.status_code == 404, (method, path)


def test_holdout_api_takes_0_to_50_percent(client, new_shop):
    assert client.put("/v1/admin/holdouts/checkout_recovery", headers=auth(new_shop),
                      json={"percent": 10}).json == {"kind": "checkout_recovery", "percent": 10}
    assert client.get("/v1/admin/holdouts", headers=auth(new_shop)).json["holdouts"]["checkout_recovery"] == 10
    assert client.put("/v1/admin/holdouts/welcome", headers=auth(new_shop), json={"percent": 51}).status_code == 422
    assert client.put("/v1/admin/holdouts/welcome", headers=auth(new_shop), json={"percent": "5"}).status_code == 422
    assert client.put("/v1/admin/holdouts/nope", headers=auth(new_shop), json={"percent": 5}).status_code == 404
    assert client.get("/v1/admin/lift?kind=nope", headers=auth(new_shop)).status_code == 422


# --- holdout through the real planner and dispatch --once ----------------------------------------


def test_holdout_subscribers_never_receive_the_kind(app, client, session, clock, new_shop, web_push_testing):
    assert client.put("/v1/admin/holdouts/welcome", headers=auth(new_shop), json={"percent": 50}).status_code == 200
    inboxes = dict(subscribe(client, app, new_shop.shop, web_push_testing, f"visitor-{i:04d}") for i in range(10))
    held = {s for s in inboxes if experiments.in_holdout(new_shop.shop.id, "welcome", s, 50)}
    assert held and held != set(inboxes), "the scenario needs both groups"

    counts = dispatch(app, clock.now())

    assert counts["sent"] == len(inboxes) - len(held)
    for subscription_id, inbox in inboxes.items():
        received = [m["kind"] for m in web_push_testing.notifications(inbox)]
        assert received == ([] if subscription_id in held else ["welcome"]), subscription_id
    session.expire_all()
    rows = {p.subscription_id: p for p in session.scalars(sa.select(Push).where(Push.kind == "welcome"))}
    assert {s for s, p in rows.items() if (p.status, p.error) == ("skipped", "holdout")} == held
    assert all(rows[s].sent_at is None for s in held)
    # Held-out rows are not sent pushes in the stats.
    stats = client.get("/v1/admin/stats", headers=auth(new_shop)).json
    assert stats["pushes_sent"] == len(inboxes) - len(held)
    # A later pass sends nothing to them either.
    assert dispatch(app, clock.now() + timedelta(hours=1))["sent"] == 0


def test_a_held_out_checkout_gets_skipped_rows_for_every_step(session, clock, new_shop):
    session.add(experiments.Holdout(shop_id=new_shop.shop.id, kind="checkout_recovery", percent=50,
                                    updated_at=clock.now()))
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    subs = [make_subscription(session, visitor, clock.now()) for _ in range(6)]
    hooks.on_checkout(session, new_shop.shop, checkout_recovery.CheckoutData(token="tok-1", total=Decimal("20.00")),
                      visitor, clock.now())
    session.flush()
    for sub in subs:
        statuses = set(session.scalars(sa.select(Push.status).where(Push.subscription_id == sub.id)))
        held = experiments.in_holdout(new_shop.shop.id, "checkout_recovery", sub.id, 50)
        assert statuses == ({"skipped"} if held else {"pending"}), sub.id


# --- variants ------------------------------------------------------------------------------------


def test_a_variant_push_arrives_with_the_variants_texts(app, client, session, clock, new_shop, web_push_testing):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop), json={
        "kind": "welcome", "variants": VARIANTS, "slice_percent": 100}).json
    inboxes = dict(subscribe(client, app, new_shop.shop, web_push_testing, f"visitor-{i:04d}") for i in range(6))
    experiment = session.get(Experiment, created["id"])
    chosen = {s: experiments.choose_variant(experiment, s)["key"] for s in inboxes}
    assert set(chosen.values()) == {"A", "B"}, "the scenario needs both variants"

    assert dispatch(app, clock.now())["sent"] == 6

    for subscription_id, inbox in inboxes.items():
        [message] = web_push_testing.notifications(inbox)
        if chosen[subscription_id] == "A":
            assert (message["title"], message["body"]) == ("A: Linen & Co says hi", "Variant A body")
        else:
            assert (message["title"], message["body"]) == ("B: hello from Linen & Co", "Variant B body")
    session.expire_all()
    rows = list(session.scalars(sa.select(Push).where(Push.kind == "welcome")))
    assert {(p.subscription_id, p.variant) for p in rows} == set(chosen.items())
    assert {p.experiment_id for p in rows} == {created["id"]}
    assert {p.url for p in rows if p.variant == "B"} == {"https://shop.example/new"}
    results = client.get(f"/v1/admin/experiments/{created['id']}/results", headers=auth(new_shop)).json
    assert {v["variant"]: v["sent"] for v in results["variants"]} == {
        k: list(chosen.values()).count(k) for k in "AB"}
    assert results["winner"] is None and results["status"] == "too few sends"


def test_outside_the_slice_the_kind_keeps_its_own_texts(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop), json={
        "kind": "welcome", "variants": VARIANTS, "slice_percent": 20}).json
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    subs = [make_subscription(session, visitor, clock.now()) for _ in range(40)]
    for sub in subs:
        hooks.on_subscription_created(session, new_shop.shop, visitor, sub, clock.now())
    session.flush()
    experiment = session.get(Experiment, created["id"])
    for sub in subs:
        row = session.scalars(sa.select(Push).where(Push.subscription_id == sub.id)).one()
        variant = experiments.choose_variant(experiment, sub.id)
        if variant is None:
            assert (row.variant, row.experiment_id, row.title) == (None, None, "Welcome to Linen & Co!")
        else:
            assert row.variant == variant["key"] and row.title.startswith(variant["key"] + ":")


def seed_results(session, clock, new_shop, experiment_id: int, figures: dict[str, tuple[int, int]]) -> None:
    """Sent rows of an experiment: per variant (sent, clicked)."""
    visitor = make_visitor(session, new_shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now())
    for key, (sent, clicked) in figures.items():
        for i in range(sent):
            make_push(session, sub, clock.now(), kind="welcome", experiment_id=experiment_id, variant=key,
                      status=PushStatus.SENT.value, sent_at=clock.now(),
                      clicked_at=clock.now() if i < clicked else None)


def test_results_state_the_z_test_and_name_the_winner_only_when_significant(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS}).json
    # 30/200 against 50/200: z = 2.5, p = 0.0124 (the hand-computed table of the unit test).
    seed_results(session, clock, new_shop.shop, created["id"], {"A": (200, 30), "B": (200, 50)})
    session.commit()
    results = client.get(f"/v1/admin/experiments/{created['id']}/results", headers=auth(new_shop)).json
    assert results["test"].startswith("two-proportion z-test")
    assert {v["variant"]: (v["sent"], v["clicks"], v["ctr"]) for v in results["variants"]} == {
        "A": (200, 30, 0.15), "B": (200, 50, 0.25)}
    [comparison] = results["comparisons"]
    assert (comparison["variant"], comparison["against"]) == ("B", "A")
    assert comparison["statistic"] == pytest.approx(2.5) and results["p_value"] == pytest.approx(0.012419, abs=1e-6)
    assert (results["winner"], results["status"]) == ("B", "winner")
    # At 99 % confidence p = 0.0124 is not enough.
    client.put(f"/v1/admin/experiments/{created['id']}", headers=auth(new_shop), json={"confidence": 0.99})
    results = client.get(f"/v1/admin/experiments/{created['id']}/results", headers=auth(new_shop)).json
    assert (results["winner"], results["status"], results["verdict"]) == (None, "not yet significant",
                                                                          "not yet significant")
    # Below the minimum of sends per variant there is no winner either.
    client.put(f"/v1/admin/experiments/{created['id']}", headers=auth(new_shop), json={"confidence": 0.95,
                                                                                  "min_sends": 201})
    assert client.get(f"/v1/admin/experiments/{created['id']}/results",
                      headers=auth(new_shop)).json["status"] == "too few sends"


def test_revenue_goal_uses_welch_t_test_on_attributed_revenue_per_push(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS, "goal": "revenue", "min_sends": 10}).json
    seed_results(session, clock, new_shop.shop, created["id"], {"A": (10, 0), "B": (10, 0)})
    # 6 of B's pushes and 4 of A's each brought a 100.00 order: means 60 and 40, t = 0.866 (hand
    # figures in the unit test), p = 0.398: not significant.
    rows = {k: list(session.scalars(sa.select(Push).where(Push.variant == k).order_by(Push.id))) for k in "AB"}
    for key, paying in (("A", 4), ("B", 6)):
        for i, push in enumerate(rows[key][:paying]):
            session.add(Order(shop_id=new_shop.shop.id, order_ref=f"{key}{i}", status="paid", total=Decimal("100.00"),
                              currency="USD", paid_at=clock.now(), attributed_push_id=push.id,
                              attributed_kind="welcome"))
    session.commit()
    results = client.get(f"/v1/admin/experiments/{created['id']}/results", headers=auth(new_shop)).json
    assert results["test"].startswith("Welch's t-test")
    by = {v["variant"]: v for v in results["variants"]}
    assert (by["B"]["orders"], by["B"]["revenue"], by["B"]["revenue_per_push"]) == (6, "600.00", "60.00")
    [comparison] = results["comparisons"]
    assert comparison["statistic"] == pytest.approx(0.866, abs=1e-3) and comparison["df"] == pytest.approx(18)
    assert results["p_value"] == pytest.approx(0.3979, abs=1e-4)
    assert results["winner"] is None and results["best"] == "B"


def test_applying_the_winner_changes_what_is_planned_next(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS, "slice_percent": 50}).json
    seed_results(session, clock, new_shop.shop, created["id"], {"A": (200, 30), "B": (200, 10)})
    session.commit()
    applied = client.post(f"/v1/admin/experiments/{created['id']}/apply", headers=auth(new_shop))
    assert applied.status_code == 200, applied.json
    assert (applied.json["status"], applied.json["winner"]) == ("applied", "A")
    assert client.get("/v1/admin/events", headers=auth(new_shop)).json[0]["title"] == VARIANTS[0]["title"]
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    subs = [make_subscription(session, visitor, clock.now()) for _ in range(10)]
    for sub in subs:
        hooks.on_subscription_created(session, new_shop.shop, visitor, sub, clock.now())
    session.flush()
    new_rows = list(session.scalars(sa.select(Push).where(Push.subscription_id.in_([s.id for s in subs]))))
    assert {(p.title, p.experiment_id, p.variant) for p in new_rows} == {("A: Linen & Co says hi", None, None)}
    again = client.post(f"/v1/admin/experiments/{created['id']}/apply", headers=auth(new_shop))
    assert (again.status_code, again.json["error"]["code"]) == (422, "experiment_applied")


def test_apply_without_a_winner_needs_a_named_variant(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS}).json
    refused = client.post(f"/v1/admin/experiments/{created['id']}/apply", headers=auth(new_shop))
    assert (refused.status_code, refused.json["error"]["code"]) == (422, "no_winner")
    chosen = client.post(f"/v1/admin/experiments/{created['id']}/apply", headers=auth(new_shop), json={"variant": "B"})
    assert chosen.json["winner"] == "B"
    preset = client.get("/v1/admin/events", headers=auth(new_shop)).json[0]
    assert (preset["title"], preset["url"]) == (VARIANTS[1]["title"], "https://shop.example/new")


def test_auto_apply_applies_a_significant_winner_in_the_dispatchers_sweep(app, client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS, "auto_apply": True}).json
    seed_results(session, clock, new_shop.shop, created["id"], {"A": (200, 30), "B": (200, 50)})
    session.commit()
    dispatch(app, clock.now())
    assert client.get(f"/v1/admin/experiments/{created['id']}", headers=auth(new_shop)).json["winner"] == "B"
    assert client.get("/v1/admin/events", headers=auth(new_shop)).json[0]["title"] == VARIANTS[1]["title"]


def test_variants_are_locked_once_a_push_carries_one(client, session, clock, new_shop):
    created = client.post("/v1/admin/experiments", headers=auth(new_shop),
                          json={"kind": "welcome", "variants": VARIANTS}).json
    seed_results(session, clock, new_shop.shop, created["id"], {"A": (1, 0)})
    session.commit()
    response = client.put(f"/v1/admin/experiments/{created['id']}", headers=auth(new_shop),
                          json={"variants": [{"title": "x"}, {"title": "y"}]})
    assert (response.status_code, response.json["error"]["code"]) == (422, "variants_locked")
    stopped = client.put(f"/v1/admin/experiments/{created['id']}", headers=auth(new_shop), json={"status": "stopped"})
    assert stopped.json["status"] == "stopped"


# --- the lift report -----------------------------------------------------------------------------


def test_lift_report_matches_a_hand_counted_scenario(client, session, clock, new_shop):
    """Ten treated and ten held-out subscriptions exposed to checkout recovery on 2026-03-02.

    Treated: six paid 100.00 within the 72 h window (one of them through two orders of 60 and
    40, so 7 orders); holdout: four paid 100.00. Not counted: an order before its exposure, one
    after the window, a test push's visitor, and a row exposed outside the range.

    By hand: conversion 6/10 against 4/10, difference 0.2 ± 1.96 · sqrt(.24/10 + .24/10) =
    0.2 ± 0.4294 → incremental orders 0.2 · 10 = 2 (95 % CI −2.29 to 6.29). Revenue per
    exposed subscription 60 against 40 (each group: six or four 100s and zeros, variance
    100² · 6 · 4 / 90 = 2666.67), se = sqrt(266.67 + 266.67) = 23.094, df = 18, t(0.975, 18) =
    2.1009: 20 ± 48.519 → incremental revenue 200 (95 % CI −285.19 to 685.19).
    """
    seed_lift_scenario(session, new_shop.shop.id)
    session.commit()

    report = client.get("/v1/admin/lift?kind=checkout_recovery&from=2026-03-01&to=2026-03-03",
                        headers=auth(new_shop)).json

    assert report["treated"] == {"exposed": 10, "converted": 6, "orders": 7, "revenue": "600.00",
                                 "conversion_rate": 0.6, "revenue_per_exposed": "60.00"}
    assert report["holdout"] == {"exposed": 10, "converted": 4, "orders": 4, "revenue": "400.00",
                                 "conversion_rate": 0.4, "revenue_per_exposed": "40.00"}
    assert report["incremental_orders"] == {"estimate": 2.0, "low": pytest.approx(-2.29, abs=0.01),
                                            "high": pytest.approx(6.29, abs=0.01)}
    assert report["incremental_revenue"] == {"estimate": 200.0, "low": pytest.approx(-285.19, abs=0.01),
                                             "high": pytest.approx(685.19, abs=0.01)}
    assert report["summary"] == ("Checkout recovery brought about 2 extra orders (95% CI -2 to 6) and $200.00 "
                                 "extra revenue (95% CI -$285.19 to $685.19). The interval includes zero: "
                                 "not yet distinguishable from no effect.")
    assert "Welch" in report["method"]["revenue_interval"]


def seed_lift_scenario(session, sid: int) -> None:
    """The scenario of ``test_lift_report_matches_a_hand_counted_scenario`` (its docstring counts it)."""
    day = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    n = 0

    def exposed(status: str, error: str | None = None, at: datetime = day, **extra):
        nonlocal n
        n += 1
        visitor = make_visitor(session, sid, at)
        sub = make_subscription(session, visitor, at)
        make_push(session, sub, at, kind="checkout_recovery", status=status, error=error,
                  dedupe_key=f"checkout:{n}:1:{sub.id}", group_key=f"checkout:{n}", **extra)
        return visitor

    def order(visitor, total: str, at: datetime):
        nonlocal n
        n += 1
        session.add(Order(shop_id=sid, order_ref=f"o{n}", visitor_id=visitor.id, status="paid",
                          total=Decimal(total), currency="USD", paid_at=at))

    treated = [exposed("sent", sent_at=day) for _ in range(8)] + [exposed("cancelled", "order_paid")] + \
        [exposed("skipped", "frequency_cap")]
    holdout = [exposed("skipped", "holdout") for _ in range(10)]
    for visitor in treated[:5]:
        order(visitor, "100.00", day + timedelta(hours=5))
    order(treated[8], "60.00", day + timedelta(minutes=30))  # the cancelled one paid: counted (intent to treat)
    order(treated[8], "40.00", day + timedelta(hours=70))
    order(treated[9], "100.00", day - timedelta(hours=1))  # before its exposure
    order(treated[9], "100.00", day + timedelta(hours=73))  # after the 72 h window
    for visitor in holdout[:4]:
        order(visitor, "100.00", day + timedelta(hours=24))
    test_visitor = make_visitor(session, sid, day)
    make_push(session, make_subscription(session, test_visitor, day), day, kind="test", status="sent")
    order(test_visitor, "500.00", day + timedelta(hours=1))
    outside = exposed("sent", at=day + timedelta(days=5), sent_at=day + timedelta(days=5))
    order(outside, "500.00", day + timedelta(days=5, hours=1))


def test_lift_report_without_a_holdout_says_so(client, new_shop):
    report = client.get("/v1/admin/lift?kind=welcome", headers=auth(new_shop)).json
    assert report["incremental_orders"] is None
    assert "nothing to compare" in report["summary"]


def test_dashboard_forms_need_the_csrf_token_and_a_log_in(app, client, new_shop):
    assert client.get("/admin/experiments").headers["Location"].endswith("/admin/login")
    assert client.get("/admin/lift").headers["Location"].endswith("/admin/login")
    app.config["WTF_CSRF_ENABLED"] = True
    login = client.get("/admin/login").get_data(as_text=True)  # a log-in is a server-side session: log in for real
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', login).group(1)
    assert client.post("/admin/login", data={"token": new_shop.admin_token, "csrf_token": csrf}).status_code == 302
    assert client.get("/admin/experiments").status_code == 200
    assert client.get("/admin/lift?kind=welcome").status_code == 200
    for path in ("/admin/experiments", "/admin/lift/holdouts", "/admin/experiments/1"):
        assert client.post(path, data={"holdout_welcome": "10"}).status_code == 400, path
