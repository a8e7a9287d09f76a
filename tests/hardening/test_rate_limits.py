"""Rate limits on the collect API: per client address, per shop, subscriptions per address per hour.

Each refusal is a 429 in the JSON error shape with ``Retry-After``, and stores nothing. The
client address comes from ``X-Forwarded-For`` only through ProxyFix with a hop count.
"""
from __future__ import annotations

import pytest

from server.core.db import get_db
from server.core.limits import get_limiter
from server.core.models import Event, Subscription, Visitor
from tests.factories import make_shop
from tests.hardening.conftest import ORIGIN, assert_json_error, count, events_body, sub_body


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_COLLECT_PER_IP": "5/hour", "RATELIMIT_COLLECT_PER_SHOP": "8/hour",
            "RATELIMIT_NEW_SUBSCRIPTIONS": "2/hour"}


def post_events(client, shop, ip="198.51.100.7", **headers):
    return client.post(f"/v1/shops/{shop.public_key}/events", json=events_body(),
                       headers={"Origin": ORIGIN, **headers}, environ_base={"REMOTE_ADDR": ip})


def assert_rate_limited(response):
    assert_json_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3601  # at most the longest window (an hour), rounded up


def test_one_address_is_limited_and_the_refused_batch_is_not_stored(client, session, shop):
    for _ in range(5):
        assert post_events(client, shop).status_code == 202
    assert count(session, Event) == 5
    refused = post_events(client, shop)
    assert_rate_limited(refused)
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read the 429
    assert "Access-Control-Allow-Origin" not in post_events(client, shop, Origin="https://evil.example").headers
    assert count(session, Event) == 5
    # Another address still gets in.
    assert post_events(client, shop, ip="198.51.100.8").status_code == 202


def test_one_shop_is_limited_across_addresses(client, session, shop):
    statuses = [post_events(client, shop, ip=f"203.0.113.{i}").status_code for i in range(8)]
    assert statuses == [202] * 8
    visitors = count(session, Visitor)
    refused = post_events(client, shop, ip="203.0.113.200")
    assert_rate_limited(refused)
    assert count(session, Event) == 8 and count(session, Visitor) == visitors


def test_new_subscriptions_per_shop_and_address_per_hour(client, session, shop):
    url = f"/v1/shops/{shop.public_key}/subscriptions"
    env = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.post(url, json=sub_body(), headers={"Origin": ORIGIN}, environ_base=env).status_code == 201
    assert client.post(url, json=sub_body(), headers={"Origin": ORIGIN}, environ_base=env).status_code == 201
    refused = client.post(url, json=sub_body(), headers={"Origin": ORIGIN}, environ_base=env)
    assert_rate_limited(refused)
    assert count(session, Subscription) == 2
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    # Events from the same address are not counted against the subscription cap.
    assert post_events(client, shop, ip="192.0.2.10").status_code == 202


def test_re_posting_a_known_subscription_never_counts(make_app, app_config, session, shop):
    # The widget re-posts its subscription on every page load; many visitors share one NAT.
    client = make_app({**app_config, "RATELIMIT_COLLECT_PER_IP": "1000/minute",
                       "RATELIMIT_COLLECT_PER_SHOP": "1000/minute"}).test_client()
    url = f"/v1/shops/{shop.public_key}/subscriptions"
    env = {"REMOTE_ADDR": "192.0.2.20"}
    known = sub_body()
    assert client.post(url, json=known, headers={"Origin": ORIGIN}, environ_base=env).status_code == 201
    for _ in range(10):
        again = client.post(url, json=known, headers={"Origin": ORIGIN}, environ_base=env)
        assert again.status_code == 200
    # One more new opt-in from behind the same address still fits the limit (2 an hour here).
    assert client.post(url, json=sub_body(), headers={"Origin": ORIGIN}, environ_base=env).status_code == 201
    assert_rate_limited(client.post(url, json=sub_body(), headers={"Origin": ORIGIN}, environ_base=env))
    assert client.post(url, json=known, headers={"Origin": ORIGIN}, environ_base=env).status_code == 200
    assert count(session, Subscription) == 2


def test_new_subscriptions_are_limited_per_shop(client, session, clock, shop):
    other_shop = make_shop(session, clock.now(), name="Other", origins=[ORIGIN]).shop
    session.commit()
    env = {"REMOTE_ADDR": "192.0.2.30"}
    for _ in range(2):
        assert client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(),
                           headers={"Origin": ORIGIN}, environ_base=env).status_code == 201
    assert_rate_limited(client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(),
                                    headers={"Origin": ORIGIN}, environ_base=env))
    # The same address opting in on another shop is not held back by the first shop's count.
    assert client.post(f"/v1/shops/{other_shop.public_key}/subscriptions", json=sub_body(),
                       headers={"Origin": ORIGIN}, environ_base=env).status_code == 201


def test_the_default_lets_a_carrier_nat_bring_many_new_opt_ins(make_app, app_config, session, clock):
    # 60 new opt-ins an hour from one address (a mobile carrier's NAT) on one shop: none refused.
    defaults = {k: v for k, v in app_config.items() if not k.startswith("RATELIMIT")}
    served = make_app(defaults)
    assert served.config["RATELIMIT_NEW_SUBSCRIPTIONS"] == "200/hour"
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    session.commit()
    client = served.test_client()
    env = {"REMOTE_ADDR": "100.64.0.1"}
    statuses = {client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(),
                            headers={"Origin": ORIGIN}, environ_base=env).status_code for _ in range(60)}
    assert statuses == {201}


def test_preflights_are_not_counted(client, shop):
    for _ in range(10):
        response = client.options(f"/v1/shops/{shop.public_key}/events",
                                  headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
                                  environ_base={"REMOTE_ADDR": "198.51.100.9"})
        assert response.status_code == 204
    assert post_events(client, shop, ip="198.51.100.9").status_code == 202


def test_forwarded_for_is_ignored_without_proxy_fix(client, session, shop):
    # A client cannot pick a fresh address per request by sending X-Forwarded-For.
    for i in range(5):
        assert post_events(client, shop, **{"X-Forwarded-For": f"10.9.9.{i}"}).status_code == 202
    assert_rate_limited(post_events(client, shop, **{"X-Forwarded-For": "10.9.9.99"}))


@pytest.mark.parametrize("hops", [1])
def test_forwarded_for_counts_through_proxy_fix(app_config, hops, make_app):
    app = make_app({**app_config, "PROXY_FIX_HOPS": hops})
    client = app.test_client()
    with get_db(app).sessionmaker() as session:
        from tests.factories import make_shop

        shop = make_shop(session, app_config["CLOCK"].now(), origins=[ORIGIN]).shop
        session.commit()
    proxy = "10.0.0.1"  # the one trusted proxy; the client is the last address it appended
    for _ in range(5):
        assert post_events(client, shop, ip=proxy, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 202
    assert_rate_limited(post_events(client, shop, ip=proxy, **{"X-Forwarded-For": "198.51.100.1"}))
    # A different client behind the same proxy has its own budget; a spoofed first hop does not help.
    assert post_events(client, shop, ip=proxy, **{"X-Forwarded-For": "198.51.100.2"}).status_code == 202
    spoofed = post_events(client, shop, ip=proxy, **{"X-Forwarded-For": "1.2.3.4, 198.51.100.1"})
    assert_rate_limited(spoofed)


def test_limits_can_be_switched_off_for_load_runs(app_config, make_app):
    app = make_app({**app_config, "RATELIMIT_ENABLED": False})
    assert get_limiter(app).enabled is False
    client = app.test_client()
    with get_db(app).sessionmaker() as session:
        from tests.factories import make_shop

        shop = make_shop(session, app_config["CLOCK"].now(), origins=[ORIGIN]).shop
        session.commit()
    assert all(post_events(client, shop).status_code == 202 for _ in range(12))


def test_the_limiter_keys_hold_no_whole_address(app, client, shop):
    post_events(client, shop, ip="198.51.100.77")
    storage = get_limiter(app).storage
    keys = " ".join(map(str, getattr(storage, "storage", {}))) + " ".join(map(str, getattr(storage, "events", {})))
    assert keys, "the in-memory storage should hold the counters"
    assert "198.51.100.77" not in keys
    assert "collect-ip" in keys


@pytest.fixture
def tight_config(app_config):
    return {**app_config, "RATELIMIT_WEBHOOKS_PER_SHOP": "2/hour", "RATELIMIT_CLICKS_PER_IP": "2/hour"}


def test_webhooks_per_shop_and_clicks_per_address(tight_config, make_app):
    import json
    from datetime import datetime, timezone

    from server.core.models import Click, Order, Push
    from server.webhooks.native import sign
    from server.core.tokens import make_click_token
    from tests.factories import make_shop, make_subscription, make_visitor

    clock = tight_config["CLOCK"]
    clock.set(datetime.now(timezone.utc))
    app = make_app(tight_config)
    client = app.test_client()
    with get_db(app).sessionmaker() as session:
        new = make_shop(session, clock.now(), origins=[ORIGIN])
        sub = make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now())
        push = Push(shop_id=new.shop.id, visitor_id=sub.visitor_id, subscription_id=sub.id, kind="welcome",
                    dedupe_key="k1", title="Hi", body="x", url="https://shop.example/", due_at=clock.now(),
                    created_at=clock.now(), status="sent")
        session.add(push)
        session.commit()
        push_id = push.id
    for i in range(3):
        raw = json.dumps({"id": f"w{i}", "order_id": f"o{i}", "status": "paid", "total": "1.00",
                          "currency": "USD"}).encode()
        response = client.post(f"/v1/webhooks/{new.shop.public_key}/orders", data=raw,
                               content_type="application/json",
                               headers={"X-Pushcart-Signature": sign(new.secret, int(clock.now().timestamp()), raw)})
    assert_rate_limited(response)
    link = "/c/" + make_click_token(app.config["SECRET_KEY"], push_id)
    assert [client.get(link).status_code for _ in range(2)] == [302, 302]
    assert_rate_limited(client.get(link))
    with get_db(app).sessionmaker() as session:
        assert count(session, Order) == 2 and count(session, Click) == 2
