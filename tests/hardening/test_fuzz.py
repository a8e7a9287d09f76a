"""Fuzzing the public bodies with hypothesis: the collect API (events, subscriptions) and the
signed webhooks. Whatever arrives, the answer is never a 5xx and every refusal is the JSON
error shape; what was stored keeps only http(s) links.

Each test prints how many inputs it tried (``pytest -s`` shows them); ``FUZZ_EXAMPLES`` sets
how many per test (default 150, so the suite stays fast; the closing figures used more).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.core.models import Checkout, Event, Order, Push, Shipment, Visitor
from server.collect.events import EVENT_TYPES
from server.webhooks.native import sign
from tests.factories import browser_keys
from tests.hardening.conftest import ORIGIN

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture
def app_config(app_config):
    # Rate limits would turn most inputs into 429s; they have their own tests.
    return {**app_config, "RATELIMIT_ENABLED": False}


# -- strategies ------------------------------------------------------------------------------

NASTY = ["", " ", "\x00", "\ud800", "java\tscript:alert(1)", "javascript:alert(1)", " https://shop.example/",
         "https://shop.example/\x00", "data:text/html,<script>", "<script>alert(1)</script>", "{{ 7*7 }}",
         "https://user:pw@shop.example/", "//evil.example", "https://shop.example/" + "a" * 3000, "a" * 5000,
         "1e400", "-1", "12.345", "NaN", "9" * 40, "\u202e", "😀", "' OR 1=1 --", "%00", "\r\nSet-Cookie: x"]
text = st.text(max_size=40) | st.sampled_from(NASTY)
numbers = (st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([0, 1, 12.5, 19.99, 1e12, 1e15, -0.01, 0.001, 10**14]))
scalars = st.none() | st.booleans() | numbers | text
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=10)


def maybe(plausible):
    """Mostly the plausible value, sometimes anything at all."""
    return st.one_of(plausible, plausible, plausible, json_values)


urls = maybe(st.sampled_from(["https://shop.example/p/1", "http://shop.example/", "https://shop.example/c?x=1"])
             | text)
money = maybe(st.sampled_from(["12.50", "0", "19.99", 10, 0.5, "1e3"]) | numbers)
refs = maybe(st.from_regex(r"^[A-Za-z0-9_.:-]{1,64}$", fullmatch=True) | text)
currency = maybe(st.sampled_from(["USD", "EUR", "usd", "EURO"]))
item = st.fixed_dictionaries({}, optional={"id": refs, "title": text, "price": money, "quantity": maybe(numbers),
                                           "url": urls, "image": urls})
product = maybe(st.fixed_dictionaries({"id": refs, "title": maybe(text)},
                                      optional={"price": money, "currency": currency, "url": urls, "image": urls}))
cart = maybe(st.fixed_dictionaries({"token": refs, "total": money, "currency": currency,
                                    "item_count": maybe(st.integers(-5, 20_000))},
                                   optional={"checkout_url": urls, "items": maybe(st.lists(item, max_size=3))}))
event = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(EVENT_TYPES))},
    optional={"id": refs, "url": urls, "referrer": urls, "product": product, "cart": cart,
              "email": maybe(st.emails() | text), "first_name": text, "customer_id": refs})
visitor_ids = maybe(st.from_regex(r"^[A-Za-z0-9_-]{8,64}$", fullmatch=True))
event_bodies = maybe(st.fixed_dictionaries({"visitor_id": visitor_ids,
                                            "events": maybe(st.lists(event, min_size=1, max_size=4))}))
endpoints = maybe(st.from_regex(r"^[A-Za-z0-9_-]{1,40}$", fullmatch=True).map(
    lambda token: f"https://fcm.googleapis.com/fcm/send/{token}")
    | st.sampled_from(["https://fcm.googleapis.com/fcm/send/abc", "http://fcm.googleapis.com/x",
                                   "https://127.0.0.1/x", "https://evil.example/x",
                                   "https://fcm.googleapis.com@evil.example/"]) | text)
keys = maybe(st.builds(browser_keys) | st.fixed_dictionaries({"p256dh": text, "auth": text}))
subscription_bodies = maybe(st.fixed_dictionaries(
    {"visitor_id": visitor_ids, "subscription": maybe(st.fixed_dictionaries(
        {"endpoint": endpoints, "keys": keys}, optional={"expirationTime": maybe(numbers)}))},
    optional={"locale": text, "timezone": maybe(st.sampled_from(["Europe/Berlin", "Mars/Base"]) | text)}))


def raw_bytes(bodies):
    """Bodies as bytes: the JSON of ``bodies``, sometimes cut or with a byte changed, or random bytes."""
    def corrupt(pair):
        raw, (where, byte, cut) = pair
        if not raw:
            return raw
        i = where % len(raw)
        raw = raw[:i] + bytes([byte]) + raw[i + 1:]
        return raw[: max(1, len(raw) - cut)]

    as_json = bodies.map(lambda b: json.dumps(b).encode())
    corrupted = st.tuples(as_json, st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 5))).map(corrupt)
    return st.one_of(as_json, as_json, as_json, corrupted, st.binary(max_size=200))


# -- the checks ------------------------------------------------------------------------------

def check_answer(response, seen: Counter) -> None:
    """Never a 5xx; every refusal is the JSON error shape."""
    seen[response.status_code] += 1
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and set(body) == {"error"}, response.get_data(as_text=True)[:300]
        assert set(body["error"]) == {"code", "message"}


def is_safe_link(value) -> bool:
    if value is None:
        return True
    parts = urlsplit(value)
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value))


def report(name: str, seen: Counter, record_property) -> None:
    tried = sum(seen.values())
    record_property(f"{name}_inputs", tried)
    print(f"\nfuzz {name}: {tried} inputs tried; statuses {dict(sorted(seen.items()))}")
    assert tried >= EXAMPLES // 2, "hypothesis should have run most of its examples"


def test_fuzz_collect_events(client, session, shop, record_property):
    seen: Counter = Counter()
    url = f"/v1/shops/{shop.public_key}/events"

    @FUZZ
    @given(raw=raw_bytes(event_bodies), content_type=st.sampled_from(["application/json", "text/plain"]))
    def run(raw, content_type):
        check_answer(client.post(url, data=raw, content_type=content_type, headers={"Origin": ORIGIN}), seen)

    run()
    report("collect_events", seen, record_property)
    assert seen[202] > 0, "some generated batches should be valid"
    session.expire_all()
    for event in session.scalars(sa.select(Event)):
        assert is_safe_link(event.url) and is_safe_link(event.referrer)
        for part in (event.product or {}, event.cart or {}):
            assert is_safe_link(part.get("url")) and is_safe_link(part.get("image"))
            assert is_safe_link(part.get("checkout_url"))
    for visitor in session.scalars(sa.select(Visitor)):
        assert is_safe_link(visitor.referrer) and is_safe_link(visitor.landing_url)


def test_fuzz_collect_subscriptions(client, shop, record_property):
    seen: Counter = Counter()
    url = f"/v1/shops/{shop.public_key}/subscriptions"

    unsubscribe_bodies = maybe(st.fixed_dictionaries({"endpoint": endpoints}))

    @FUZZ
    @given(call=st.one_of(st.tuples(st.just("POST"), raw_bytes(subscription_bodies)),
                          st.tuples(st.just("DELETE"), raw_bytes(unsubscribe_bodies))))
    def run(call):
        method, raw = call
        check_answer(client.open(url, method=method, data=raw, content_type="application/json",
                                 headers={"Origin": ORIGIN}), seen)

    run()
    report("collect_subscriptions", seen, record_property)
    assert seen[201] + seen[200] > 0, "some generated subscriptions should be valid"


checkout_hooks = st.fixed_dictionaries(
    {"id": refs, "checkout_token": refs, "total": money, "currency": currency,
     "item_count": maybe(st.integers(-5, 20_000)), "checkout_url": urls},
    optional={"visitor_id": visitor_ids, "email": maybe(st.emails() | text), "items": maybe(st.lists(item, max_size=3))})
order_hooks = st.fixed_dictionaries(
    {"id": refs, "order_id": refs, "status": maybe(st.just("paid")), "total": money, "currency": currency},
    optional={"checkout_token": refs, "visitor_id": visitor_ids, "email": maybe(st.emails() | text),
              "items": maybe(st.lists(item, max_size=3))})
shipment_hooks = st.fixed_dictionaries({"id": refs, "order_id": refs},
                                       optional={"tracking_url": urls, "carrier": text})
webhooks = st.one_of(st.tuples(st.just("checkouts"), raw_bytes(maybe(checkout_hooks))),
                     st.tuples(st.just("orders"), raw_bytes(maybe(order_hooks))),
                     st.tuples(st.just("shipments"), raw_bytes(maybe(shipment_hooks))))


def test_fuzz_signed_webhooks(client, session, new_shop, clock, record_property):
    seen: Counter = Counter()

    @FUZZ
    @given(hook=webhooks)
    def run(hook):
        topic, raw = hook
        signature = sign(new_shop.secret, int(clock.now().timestamp()), raw)
        check_answer(client.post(f"/v1/webhooks/{new_shop.shop.public_key}/{topic}", data=raw,
                                 content_type="application/json", headers={"X-Pushcart-Signature": signature}), seen)

    run()
    report("webhooks", seen, record_property)
    assert seen[200] > 0, "some generated webhooks should be valid"
    session.expire_all()
    for checkout in session.scalars(sa.select(Checkout)):
        assert is_safe_link(checkout.checkout_url)
    for shipment in session.scalars(sa.select(Shipment)):
        assert is_safe_link(shipment.tracking_url)
    for push in session.scalars(sa.select(Push)):
        assert push.url == "" or is_safe_link(push.url)
    for order in session.scalars(sa.select(Order)):
        assert order.total >= 0 and order.total == order.total.quantize(order.total.__class__("0.01"))
