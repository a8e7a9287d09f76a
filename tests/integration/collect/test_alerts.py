"""Back-in-stock and price-drop alerts: the collect API's interests, and the planner driven by the
signed native ``products`` webhook, then the dispatcher's policy; on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Interest, Push, Shop, Visitor
from server.webhooks.native import sign
from tests.factories import dispatch, make_push, make_shop, make_subscription, make_visitor

ORIGIN = "https://shop.example"
VISITOR = "v-alerts-0001"
SHIRT = {"product_id": "sku-7", "variant_id": "M", "title": "Linen Shirt", "price": "49.00", "currency": "USD",
         "available": False, "inventory": 0, "url": f"{ORIGIN}/products/linen-shirt",
         "image": f"{ORIGIN}/img/shirt.jpg"}


@pytest.fixture
def shop_keys(session, clock):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    return new


def product_hook(client, new, clock, **changes):
    """The shop's back end reports the shirt (with ``changes``) through the signed native webhook."""
    product_hook.n += 1
    body = {**SHIRT, "id": f"p-{product_hook.n}", **changes}
    data = json.dumps(body).encode()
    response = client.post(f"/v1/webhooks/{new.shop.public_key}/products", data=data,
                           content_type="application/json",
                           headers={"X-Pushcart-Signature": sign(new.secret, int(clock.now().timestamp()), data)})
    assert response.status_code == 200, response.json
    return response


product_hook.n = 0


def interest(client, new, body=None, origin=ORIGIN, **changes):
    body = body if body is not None else {"visitor_id": VISITOR, "product_id": "sku-7", "variant_id": "M",
                                          "kinds": ["back_in_stock", "price_drop"], **changes}
    headers = {"Origin": origin} if origin else {}
    return client.post(f"/v1/shops/{new.shop.public_key}/interests", json=body, headers=headers)


def subscribed(session, new, clock, key=VISITOR):
    visitor = make_visitor(session, new.shop.id, clock.now(), visitor_key=key)
    sub = make_subscription(session, visitor, clock.now())
    session.commit()
    return visitor, sub


def alerts(session, kind=None):
    session.expire_all()
    query = sa.select(Push).where(Push.kind.in_([kind] if kind else ["back_in_stock", "price_drop"])).order_by(Push.id)
    return list(session.scalars(query))


def count_interests(session):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(Interest))


# -- the interests endpoint --------------------------------------------------------------------


def test_interest_is_stored_201_once_and_200_when_known_with_the_price_seen(client, session, clock, shop_keys):
    product_hook(client, shop_keys, clock)  # the shop reported the shirt at 49.00
    first = interest(client, shop_keys)
    assert first.status_code == 201, first.json
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert [i["kind"] for i in first.json["interests"]] == ["back_in_stock", "price_drop"]
    again = interest(client, shop_keys)
    assert again.status_code == 200 and again.json == first.json
    rows = list(session.scalars(sa.select(Interest).order_by(Interest.id)))
    visitor = session.scalars(sa.select(Visitor)).one()
    assert [(r.shop_id, r.visitor_id, r.product_ref, r.variant_ref, r.kind, r.seen_price, r.notified_at)
            for r in rows] == [
        (shop_keys.shop.id, visitor.id, "sku-7", "M", "back_in_stock", Decimal("49.00"), None),
        (shop_keys.shop.id, visitor.id, "sku-7", "M", "price_drop", Decimal("49.00"), None)]
    # One more kind of the same product: new (201) for it, the known one kept.
    whole = interest(client, shop_keys, variant_id=None, kinds=["price_drop", "price_drop"], product_id=123)
    assert whole.status_code == 201 and len(whole.json["interests"]) == 1
    row = session.get(Interest, whole.json["interests"][0]["id"])
    assert (row.product_ref, row.variant_ref, row.seen_price) == ("123", "", None)  # unknown product: no price


def test_interest_preflight_is_answered_per_shop(client, shop_keys):
    ok = client.options(f"/v1/shops/{shop_keys.shop.public_key}/interests",
                        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    other = client.options(f"/v1/shops/{shop_keys.shop.public_key}/interests",
                           headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize("body, status, code", [
    ({"visitor_id": VISITOR, "product_id": "sku-7", "kinds": ["restock"]}, 422, "invalid_field"),
    ({"visitor_id": VISITOR, "product_id": "sku-7", "kinds": []}, 422, "invalid_field"),
    ({"visitor_id": VISITOR, "kinds": ["price_drop"]}, 422, "invalid_field"),
    ({"visitor_id": VISITOR, "product_id": "", "kinds": ["price_drop"]}, 422, "invalid_field"),
    ({"visitor_id": VISITOR, "product_id": "x" * 129, "kinds": ["price_drop"]}, 422, "invalid_field"),
    ({"visitor_id": "no", "product_id": "sku-7", "kinds": ["price_drop"]}, 422, "invalid_field"),
    ({"visitor_id": VISITOR, "product_id": "sku-7", "variant_id": ["M"], "kinds": ["price_drop"]}, 422,
     "invalid_field"),
    (["not", "an", "object"], 400, "malformed"),
])
def test_bad_interests_are_refused_and_nothing_is_stored(client, session, shop_keys, body, status, code):
    response = interest(client, shop_keys, body=body)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read why
    assert count_interests(session) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Visitor)) == 0


def test_interest_refusals_store_nothing(client, session, shop_keys):
    assert interest(client, shop_keys, origin="https://evil.example").status_code == 403
    unknown = client.post("/v1/shops/pk_nope/interests", headers={"Origin": ORIGIN},
                          json={"visitor_id": VISITOR, "product_id": "sku-7", "kinds": ["price_drop"]})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_shop"
    huge = client.post(f"/v1/shops/{shop_keys.shop.public_key}/interests", headers={"Origin": ORIGIN},
                       data=json.dumps({"visitor_id": VISITOR, "product_id": "sku-7", "kinds": ["price_drop"],
                                        "pad": "x" * 70_000}), content_type="application/json")
    assert huge.status_code == 413
    malformed = client.post(f"/v1/shops/{shop_keys.shop.public_key}/interests", headers={"Origin": ORIGIN},
                            data="{nope", content_type="application/json")
    assert malformed.status_code == 400
    assert count_interests(session) == 0


def test_interest_as_text_plain_is_accepted_for_send_beacon(client, session, shop_keys):
    response = client.post(f"/v1/shops/{shop_keys.shop.public_key}/interests", headers={"Origin": ORIGIN},
                           data=json.dumps({"visitor_id": VISITOR, "product_id": "sku-7", "kinds": ["back_in_stock"]}),
                           content_type="text/plain")
    assert response.status_code == 201 and count_interests(session) == 1


def test_interests_share_the_collect_rate_limits(app_config, make_app, session, shop_keys):
    client = make_app({**app_config, "RATELIMIT_COLLECT_PER_IP": "3/minute",
                       "RATELIMIT_COLLECT_PER_SHOP": "100/minute"}).test_client()
    key = shop_keys.shop.public_key
    ip = {"REMOTE_ADDR": "198.51.100.9"}
    body = {"visitor_id": VISITOR, "product_id": "sku-7", "kinds": ["price_drop"]}
    # One events call and two interests use the address's 3 a minute: the budget is shared.
    assert client.post(f"/v1/shops/{key}/events", headers={"Origin": ORIGIN}, environ_base=ip,
                       json={"visitor_id": VISITOR, "events": [{"type": "page_view"}]}).status_code == 202
    for product in ("a", "b"):
        assert client.post(f"/v1/shops/{key}/interests", headers={"Origin": ORIGIN}, environ_base=ip,
                           json={**body, "product_id": product}).status_code == 201
    refused = client.post(f"/v1/shops/{key}/interests", headers={"Origin": ORIGIN}, environ_base=ip,
                          json={**body, "product_id": "c"})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    session.expire_all()
    assert set(session.scalars(sa.select(Interest.product_ref))) == {"a", "b"}


# -- the planner, driven by the products webhook ------------------------------------------------


def test_back_in_stock_plans_one_push_per_active_subscription_naming_the_product(client, session, clock, shop_keys):
    visitor, sub = subscribed(session, shop_keys, clock)
    second = make_subscription(session, visitor, clock.now())  # the same visitor on a phone
    make_subscription(session, visitor, clock.now(), status="unsubscribed")  # gets nothing
    subscribed(session, shop_keys, clock, key="v-alerts-other")  # no interest: gets nothing
    session.commit()
    product_hook(client, shop_keys, clock)  # out of stock
    assert interest(client, shop_keys, kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, inventory=3)  # still out of stock: nothing
    assert alerts(session) == []

    product_hook(client, shop_keys, clock, available=True, inventory=5)

    planned = alerts(session)
    assert sorted(p.subscription_id for p in planned) == sorted([sub.id, second.id])
    push = planned[0]
    assert (push.kind, push.status, push.due_at) == ("back_in_stock", "pending", clock.now())
    assert push.title == "Linen Shirt is back in stock"
    assert "available again for $49.00" in push.body
    assert push.url == f"{ORIGIN}/products/linen-shirt" and push.image == f"{ORIGIN}/img/shirt.jpg"
    assert (push.ttl, push.urgency) == (86400, "normal")
    assert session.scalars(sa.select(Interest)).one().notified_at == clock.now()
    # The same report again (a retried delivery under a new id, or stock going up): nothing more.
    product_hook(client, shop_keys, clock, available=True, inventory=9)
    assert len(alerts(session)) == 2


def test_a_product_first_reported_in_stock_is_no_back_in_stock(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    assert interest(client, shop_keys, kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True)  # never seen before: its past stock is unknown
    assert alerts(session) == []


def test_price_drop_under_the_threshold_plans_nothing_and_above_it_plans_one(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    product_hook(client, shop_keys, clock, available=True)  # 49.00
    assert interest(client, shop_keys, kinds=["price_drop"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True, price="44.20")  # 9.8 % below 49.00
    assert alerts(session) == []
    product_hook(client, shop_keys, clock, available=True, price="44.10")  # exactly 10 % below 49.00
    [push] = alerts(session)
    assert push.kind == "price_drop" and push.title == "Price drop: Linen Shirt"
    assert push.body == "Linen Shirt is now $44.10 (was $49.00)."
    row = session.scalars(sa.select(Interest)).one()
    assert (row.seen_price, row.notified_at) == (Decimal("44.10"), clock.now())  # the next needs a further drop


def test_price_drop_is_measured_from_the_price_seen_not_only_the_previous_one(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    product_hook(client, shop_keys, clock, available=True, price="50.00")
    assert interest(client, shop_keys, kinds=["price_drop"]).status_code == 201  # saw 50.00
    product_hook(client, shop_keys, clock, available=True, price="47.00")  # 6 %: nothing
    product_hook(client, shop_keys, clock, available=True, price="44.00")  # 6.4 % below 47, 12 % below 50
    [push] = alerts(session)
    assert push.body == "Linen Shirt is now $44.00 (was $50.00)."
    # A price going up, or an unavailable variant, plans nothing.
    product_hook(client, shop_keys, clock, available=True, price="60.00")
    product_hook(client, shop_keys, clock, available=False, price="10.00")
    assert len(alerts(session)) == 1


def test_the_shops_minimum_drop_is_used(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    shop_keys.shop.alert_min_drop_percent = 30
    session.commit()
    product_hook(client, shop_keys, clock, available=True, price="100.00")
    assert interest(client, shop_keys, kinds=["price_drop"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True, price="75.00")  # 25 %
    assert alerts(session) == []
    product_hook(client, shop_keys, clock, available=True, price="70.00")  # 30 %
    assert len(alerts(session)) == 1


def test_one_alert_per_product_and_kind_per_subscription_within_the_window(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    product_hook(client, shop_keys, clock, available=True, price="100.00")
    assert interest(client, shop_keys, kinds=["price_drop"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True, price="80.00")
    assert len(alerts(session)) == 1
    clock.advance(days=6, hours=23)
    product_hook(client, shop_keys, clock, available=True, price="60.00")  # 25 % further, inside 7 days
    assert len(alerts(session)) == 1
    clock.advance(hours=2)  # 7 days 1 hour after the first alert
    product_hook(client, shop_keys, clock, available=True, price="50.00")  # 37.5 % below the alerted 80
    planned = alerts(session)
    assert len(planned) == 2 and planned[1].body == "Linen Shirt is now $50.00 (was $80.00)."
    assert planned[0].dedupe_key != planned[1].dedupe_key


def test_the_window_holds_across_its_period_edge(client, session, clock, shop_keys):
    # The dedupe key changes every 7 days (epoch periods); the check of recent rows still holds.
    subscribed(session, shop_keys, clock)
    period = 7 * 86400
    edge = datetime.fromtimestamp((int(clock.now().timestamp()) // period + 1) * period, tz=timezone.utc)
    clock.set(edge - timedelta(hours=1))
    product_hook(client, shop_keys, clock)
    assert interest(client, shop_keys, kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True)
    product_hook(client, shop_keys, clock, available=False)
    clock.set(edge + timedelta(hours=1))
    product_hook(client, shop_keys, clock, available=True)  # in the next period, 2 hours later
    assert len(alerts(session)) == 1


def test_a_product_wide_interest_matches_each_variant_and_a_variant_only_its_own(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    other_visitor, other_sub = subscribed(session, shop_keys, clock, key="v-alerts-large")
    product_hook(client, shop_keys, clock, variant_id="M")
    product_hook(client, shop_keys, clock, variant_id="L")
    assert interest(client, shop_keys, variant_id=None, kinds=["back_in_stock"]).status_code == 201
    assert interest(client, shop_keys, visitor_id="v-alerts-large", variant_id="M",
                    kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, variant_id="L", available=True)
    [push] = alerts(session)
    assert push.visitor_id != other_visitor.id  # the product-wide one; the M-only visitor waits for M
    product_hook(client, shop_keys, clock, variant_id="M", available=True)
    planned = alerts(session)
    assert len(planned) == 2 and planned[1].subscription_id == other_sub.id  # not a second one for the first


def test_a_disabled_kind_plans_nothing(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    response = client.put("/v1/admin/events/back_in_stock", json={"enabled": False},
                          headers={"Authorization": f"Bearer {shop_keys.admin_token}"})
    assert response.status_code == 200 and response.json["enabled"] is False
    product_hook(client, shop_keys, clock)
    assert interest(client, shop_keys).status_code == 201
    product_hook(client, shop_keys, clock, available=True, price="20.00")
    assert [p.kind for p in alerts(session)] == ["price_drop"]  # the other kind still on




def test_alerts_respect_the_frequency_cap_and_quiet_hours(app, client, session, clock, shop_keys):
    _, sub = subscribed(session, shop_keys, clock)
    for i in range(3):  # the default cap: 3 marketing pushes per 24 h, all used
        make_push(session, sub, clock.now() - timedelta(hours=i + 1), kind="welcome", status="sent",
                  sent_at=clock.now() - timedelta(hours=i + 1))
    session.commit()
    product_hook(client, shop_keys, clock)
    assert interest(client, shop_keys, kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True)
    [push] = alerts(session)
    assert dispatch(app, clock.now())["skipped"] == 1
    session.expire_all()
    assert (session.get(Push, push.id).status, session.get(Push, push.id).error) == ("skipped", "frequency_cap")


def test_alerts_wait_for_the_end_of_quiet_hours(app, client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    shop = session.get(Shop, shop_keys.shop.id)
    shop.quiet_hours_start, shop.quiet_hours_end = "11:00", "14:00"  # the clock is at 12:00 UTC
    session.commit()
    product_hook(client, shop_keys, clock)
    assert interest(client, shop_keys, kinds=["back_in_stock"]).status_code == 201
    product_hook(client, shop_keys, clock, available=True)
    [push] = alerts(session)
    dispatch(app, clock.now())
    session.expire_all()
    row = session.get(Push, push.id)
    assert row.status == "pending" and row.due_at == clock.now().replace(hour=14, minute=0)


def test_alert_settings_in_the_settings_api(client, session, shop_keys):
    headers = {"Authorization": f"Bearer {shop_keys.admin_token}"}
    current = client.get("/v1/admin/settings", headers=headers).json
    assert (current["alert_min_drop_percent"], current["alert_window_days"], current["pause_unengaged_after"]) == (
        10, 7, 0)
    changed = client.put("/v1/admin/settings", headers=headers,
                         json={"alert_min_drop_percent": 15, "alert_window_days": 3, "pause_unengaged_after": 10})
    assert changed.status_code == 200, changed.json
    assert (changed.json["alert_min_drop_percent"], changed.json["alert_window_days"],
            changed.json["pause_unengaged_after"]) == (15, 3, 10)
    for bad in ({"alert_min_drop_percent": 0}, {"alert_min_drop_percent": 91}, {"alert_window_days": 0},
                {"pause_unengaged_after": 2}, {"pause_unengaged_after": 101}, {"alert_window_days": "x"}):
        response = client.put("/v1/admin/settings", headers=headers, json=bad)
        assert response.status_code == 422, bad
    session.expire_all()
    shop = session.get(Shop, shop_keys.shop.id)
    assert (shop.alert_min_drop_percent, shop.alert_window_days, shop.pause_unengaged_after) == (15, 3, 10)


def test_the_alert_kinds_are_in_the_events_api_and_the_push_records_filter(client, session, clock, shop_keys):
    headers = {"Authorization": f"Bearer {shop_keys.admin_token}"}
    events = {e["kind"]: e for e in client.get("/v1/admin/events", headers=headers).json}
    assert events["price_drop"]["title"] == "Price drop: {{ product_title }}" and events["price_drop"]["delays"] == [0]
    saved = client.put("/v1/admin/events/price_drop", headers=headers,
                       json={"title": "{{ product_title }}: {{ old_price }} → {{ product_price }}"})
    assert saved.status_code == 200
    assert client.put("/v1/admin/events/price_drop", headers=headers,
                      json={"delays": [0, 60]}).status_code == 422  # one push, one delay
    _, sub = subscribed(session, shop_keys, clock)
    make_push(session, sub, clock.now(), kind="price_drop", status="sent", sent_at=clock.now())
    session.commit()
    records = client.get("/v1/admin/pushes?kind=price_drop", headers=headers).json
    assert [r["kind"] for r in records["items"]] == ["price_drop"]


def test_forgetting_a_visitor_deletes_their_interests(client, session, clock, shop_keys):
    subscribed(session, shop_keys, clock)
    subscribed(session, shop_keys, clock, key="v-alerts-other")
    assert interest(client, shop_keys).status_code == 201
    assert interest(client, shop_keys, visitor_id="v-alerts-other").status_code == 201
    response = client.delete(f"/v1/admin/visitors/{VISITOR}",
                             headers={"Authorization": f"Bearer {shop_keys.admin_token}"})
    assert response.status_code == 200, response.json
    session.expire_all()
    left = session.scalars(sa.select(Interest)).all()
    assert {i.visitor_id for i in left} == {session.scalars(
        sa.select(Visitor.id).where(Visitor.visitor_key == "v-alerts-other")).one()}
    assert len(left) == 2


def test_a_visitor_may_follow_a_bounded_number_of_products(client, session, shop_keys, monkeypatch):
    from server.collect import interests as service

    monkeypatch.setattr(service, "MAX_INTERESTS_PER_VISITOR", 3)
    assert interest(client, shop_keys, product_id="a").status_code == 201  # two kinds: 2 rows
    assert interest(client, shop_keys, product_id="b", kinds=["price_drop"]).status_code == 201
    refused = interest(client, shop_keys, product_id="c", kinds=["price_drop"])
    assert refused.status_code == 422 and refused.json["error"]["code"] == "too_many_interests"
    assert interest(client, shop_keys, product_id="a").status_code == 200  # known ones still answer
    assert count_interests(session) == 3
