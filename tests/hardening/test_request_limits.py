"""Hostile and broken bodies on the collect API and the webhooks: each refused with its status,
the JSON error shape, and nothing stored. Money stays exact."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Event, Order, Subscription, Visitor, WebhookReceipt
from server.webhooks.native import sign
from tests.hardening.conftest import ORIGIN, assert_json_error, count, events_body, sub_body

VISITOR = "visitor_limits_1"


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = {"n": value}
    return value


def event_with(**fields) -> str:
    return json.dumps({"visitor_id": VISITOR, "events": [{"type": "page_view", "id": "e1", **fields}]})


# (raw body, status, error code or None)
COLLECT_REFUSALS = {
    "larger than 64 KiB": (json.dumps({"visitor_id": VISITOR, "events": [{"type": "leave", "pad": "x" * 70_000}]}),
                           413, "too_large"),
    "nested 11 deep": (event_with(product=nested(9)), 400, "malformed"),
    "nested 30,000 deep": ("[" * 30_000 + "]" * 30_000, 400, "malformed"),
    "a string over 4096 characters": (event_with(url="https://shop.example/" + "a" * 5000), 400, "malformed"),
    "NaN": (event_with(product={"id": "p", "title": "t", "price": float("nan"), "currency": "USD"}), 400, "malformed"),
    "Infinity": ('{"visitor_id": "%s", "events": [{"type": "page_view", "n": Infinity}]}' % VISITOR, 400, "malformed"),
    "1e400": ('{"visitor_id": "%s", "events": [{"type": "page_view", "n": 1e400}]}' % VISITOR, 400, "malformed"),
    "a NUL character": (event_with(url="https://shop.example/\u0000"), 400, "malformed"),
    "a lone surrogate": (event_with(referrer="https://shop.example/\ud800"), 400, "malformed"),
    "a huge integer": (event_with(cart={"token": "t", "total": 1, "currency": "USD",
                                        "item_count": 2**70, "checkout_url": "https://shop.example/c"}), 400, "malformed"),
    "not UTF-8": (b'{"visitor_id": "\xff\xfe"}', 400, "malformed"),
    "not an object": ("[1, 2, 3]", 400, "malformed"),
    "more than 50 events": (json.dumps(events_body(51, VISITOR)), 413, None),
    "a javascript: URL": (event_with(url="java\tscript:alert(1)"), 422, None),
    "a negative price": (event_with(type="product_view", product={"id": "p1", "title": "Shirt", "price": "-1",
                                                                  "currency": "USD", "url": "https://shop.example/p"}),
                         422, None),
    "a price with three decimals": (event_with(type="product_view", product={
        "id": "p1", "title": "Shirt", "price": 19.999, "currency": "USD", "url": "https://shop.example/p"}), 422, None),
}


@pytest.mark.parametrize("name", list(COLLECT_REFUSALS))
def test_collect_refusals_store_nothing(client, session, shop, name):
    raw, status, code = COLLECT_REFUSALS[name]
    response = client.post(f"/v1/shops/{shop.public_key}/events", data=raw, content_type="application/json",
                           headers={"Origin": ORIGIN})
    assert_json_error(response, status, code)
    assert count(session, Event) == 0 and count(session, Visitor) == 0


@pytest.mark.parametrize("name", ["nested 30,000 deep", "a NUL character", "larger than 64 KiB"])
def test_subscription_refusals_store_nothing(client, session, shop, name):
    raw, status, code = COLLECT_REFUSALS[name]
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", data=raw, content_type="application/json")
    assert_json_error(response, status, code)
    assert count(session, Subscription) == 0 and count(session, Visitor) == 0


def test_a_nul_in_a_subscription_field_is_refused(client, session, shop):
    body = sub_body()
    body["locale"] = "de\u0000DE"
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body)
    assert_json_error(response, 400, "malformed")
    assert count(session, Subscription) == 0


def test_prices_are_stored_exactly(client, session, shop):
    raw = event_with(type="product_view", product={"id": "p1", "title": "Shirt", "price": 0.1 + 0.2 - 0.3 + 19.99,
                                                   "currency": "USD", "url": "https://shop.example/p"})
    raw = raw.replace(str(0.1 + 0.2 - 0.3 + 19.99), "19.99")
    assert client.post(f"/v1/shops/{shop.public_key}/events", data=raw, content_type="application/json").status_code == 202
    session.expire_all()
    event = session.scalars(sa.select(Event)).one()
    assert Decimal(str(event.product["price"])) == Decimal("19.99")


def post_webhook(client, new_shop, topic, raw: bytes | str, *, secret=None, timestamp=None):
    raw = raw.encode() if isinstance(raw, str) else raw
    signature = sign(secret or new_shop.secret, int(timestamp if timestamp is not None else time.time()), raw)
    return client.post(f"/v1/webhooks/{new_shop.shop.public_key}/{topic}", data=raw,
                       content_type="application/json", headers={"X-Pushcart-Signature": signature})


def order_body(**overrides) -> dict:
    return {"id": "wh_1", "order_id": "1001", "status": "paid", "total": "25.00", "currency": "USD", **overrides}


@pytest.fixture
def real_time(clock):
    """Webhook signatures are checked against the app clock: align it with the signing time."""
    from datetime import datetime, timezone

    clock.set(datetime.now(timezone.utc))
    return clock


WEBHOOK_REFUSALS = {
    "nested 30,000 deep": ("[" * 30_000 + "]" * 30_000, 400, "malformed"),
    "nested 11 deep": (json.dumps(order_body(items=[nested(10)])), 400, "malformed"),
    "a NUL character": (json.dumps(order_body(order_id="10\u000001")), 400, "malformed"),
    "NaN total": (json.dumps(order_body(total=float("nan"))), 400, "malformed"),
    "a huge total": (json.dumps(order_body(total="1e20")), 422, None),
    "a total with three decimals": (json.dumps(order_body(total="10.005")), 422, None),
    "a javascript: tracking URL": (json.dumps({"id": "s1", "order_id": "1001", "tracking_url": "java\tscript:x"}),
                                   422, None),
}


@pytest.mark.parametrize("name", list(WEBHOOK_REFUSALS))
def test_webhook_refusals_store_nothing(client, session, new_shop, real_time, name):
    raw, status, code = WEBHOOK_REFUSALS[name]
    topic = "shipments" if "tracking" in name else "orders"
    response = post_webhook(client, new_shop, topic, raw)
    assert_json_error(response, status, code)
    assert count(session, Order) == 0 and count(session, WebhookReceipt) == 0


def test_webhook_signature_refusals_store_nothing(client, session, new_shop, real_time):
    raw = json.dumps(order_body())
    assert_json_error(post_webhook(client, new_shop, "orders", raw, secret="whsec_wrong"), 401)
    assert_json_error(post_webhook(client, new_shop, "orders", raw, timestamp=time.time() - 301), 401)
    assert count(session, Order) == 0 and count(session, WebhookReceipt) == 0
    assert post_webhook(client, new_shop, "orders", raw).status_code == 200
    session.expire_all()
    assert session.scalars(sa.select(Order)).one().total == Decimal("25.00")


def test_a_chunked_body_over_64_kib_is_413_too(client, session, shop):
    import io

    raw = json.dumps({"visitor_id": VISITOR, "events": [{"type": "leave", "pad": "x" * 70_000}]}).encode()
    response = client.post(f"/v1/shops/{shop.public_key}/events", input_stream=io.BytesIO(raw),
                           content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert_json_error(response, 413, "too_large")
    assert count(session, Event) == 0
