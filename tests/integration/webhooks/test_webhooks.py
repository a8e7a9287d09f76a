"""Merchant webhooks over HTTP: signatures, idempotency, linking, and what each topic plans."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.core.models import Checkout, Click, Order, Push, PushStatus, Shipment, WebhookReceipt
from server.webhooks.native import sign
from tests.factories import make_shop, make_subscription, make_visitor
from tests.presets_support import cart, emit, pushes


@pytest.fixture
def shop_keys(session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now(), visitor_key="v-abc", email="ann@example.com")
    make_subscription(session, visitor, clock.now())
    session.commit()
    return new


def post(client, shop_keys, topic, body, *, t=None, secret=None, clock=None, raw=None, header=None):
    data = raw if raw is not None else json.dumps(body).encode()
    stamp = int(t if t is not None else clock.now().timestamp())
    headers = {"X-Pushcart-Signature": header if header is not None else sign(secret or shop_keys.secret, stamp, data)}
    return client.post(f"/v1/webhooks/{shop_keys.shop.public_key}/{topic}", data=data, headers=headers,
                       content_type="application/json")


def checkout_body(**over):
    body = {"id": "wh-1", "checkout_token": "tok-1", "visitor_id": "v-abc", "total": "98.00", "currency": "USD",
            "item_count": 2, "checkout_url": "https://shop.example/checkout/tok-1",
            "items": [{"id": "sku-2", "title": "Blue Mug", "price": 12.5, "quantity": 2}]}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def counts(session):
    session.expire_all()
    return {m.__name__: session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (Checkout, Order, Shipment, WebhookReceipt, Push)}


def test_checkout_webhook_records_and_plans_recovery(client, session, shop_keys, clock):
    response = post(client, shop_keys, "checkouts", checkout_body(), clock=clock)
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    checkout = session.scalars(sa.select(Checkout)).one()
    assert (checkout.total, checkout.item_count, checkout.currency) == (Decimal("98.00"), 2, "USD")
    assert checkout.items[0]["price"] == "12.5"
    [row] = pushes(session, kind="checkout_recovery")
    assert row.due_at == clock.now() + timedelta(hours=1)
    assert row.url == "https://shop.example/checkout/tok-1"


def test_a_repeated_webhook_id_changes_nothing(client, session, shop_keys, clock):
    assert post(client, shop_keys, "checkouts", checkout_body(), clock=clock).status_code == 200
    before = counts(session)
    again = post(client, shop_keys, "checkouts", checkout_body(total="1.00", checkout_token="tok-2"), clock=clock)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert counts(session) == before
    assert session.scalars(sa.select(Checkout)).one().total == Decimal("98.00")


def test_visitor_is_linked_by_checkout_token_then_email(client, session, shop_keys, clock):
    shop = shop_keys.shop
    widget_visitor = make_visitor(session, shop.id, clock.now(), visitor_key="v-widget")
    make_subscription(session, widget_visitor, clock.now())
    emit(session, shop, widget_visitor, "checkout_started", clock.now(), cart=cart(token="tok-w"))
    session.commit()
    # No visitor_id: the checkout token names the visitor who started it in the widget.
    post(client, shop_keys, "orders", {"id": "o-1", "order_id": "1001", "status": "paid", "checkout_token": "tok-w",
                                       "total": "98.00", "currency": "USD"}, clock=clock)
    # Neither: an identified email does.
    post(client, shop_keys, "orders", {"id": "o-2", "order_id": "1002", "status": "paid",
                                       "email": "ANN@example.com", "total": "5", "currency": "usd"}, clock=clock)
    session.expire_all()
    orders = {o.order_ref: o for o in session.scalars(sa.select(Order))}
    assert orders["1001"].visitor_id == widget_visitor.id
    assert orders["1002"].visitor_id != widget_visitor.id and orders["1002"].visitor_id is not None
    assert orders["1002"].currency == "USD"


def test_paid_order_stops_the_series_plans_repurchase_and_attributes(client, session, shop_keys, clock):
    post(client, shop_keys, "checkouts", checkout_body(), clock=clock)
    [step] = pushes(session, kind="checkout_recovery")
    step.status, step.sent_at = PushStatus.SENT.value, clock.now()
    session.add(Click(shop_id=shop_keys.shop.id, push_id=step.id, visitor_id=step.visitor_id,
                      kind=step.kind, clicked_at=clock.advance(minutes=10)))
    session.commit()
    paid = clock.advance(minutes=5)
    response = post(client, shop_keys, "orders", {"id": "o-1", "order_id": "1001", "status": "paid",
                                                  "checkout_token": "tok-1", "total": "98.00",
                                                  "currency": "USD"}, clock=clock)
    assert response.status_code == 200
    session.expire_all()
    order = session.scalars(sa.select(Order)).one()
    assert order.attributed_kind == "checkout_recovery" and order.attributed_push_id == step.id
    assert session.scalars(sa.select(Checkout)).one().paid_at == paid
    [repurchase] = pushes(session, kind="repurchase")
    assert repurchase.due_at == paid + timedelta(days=7)


def test_paid_order_before_step_one_cancels_it(client, session, shop_keys, clock):
    post(client, shop_keys, "checkouts", checkout_body(), clock=clock)
    clock.advance(minutes=20)
    post(client, shop_keys, "orders", {"id": "o-1", "order_id": "1001", "status": "paid", "checkout_token": "tok-1",
                                       "total": "98.00", "currency": "USD"}, clock=clock)
    [step] = pushes(session, kind="checkout_recovery")
    assert (step.status, step.error) == (PushStatus.CANCELLED.value, "order_paid")


def test_shipment_plans_the_shipped_push_with_tracking(client, session, shop_keys, clock):
    post(client, shop_keys, "orders", {"id": "o-1", "order_id": "1001", "status": "paid", "visitor_id": "v-abc",
                                       "total": "98.00", "currency": "USD"}, clock=clock)
    response = post(client, shop_keys, "shipments", {"id": "s-1", "order_id": "1001", "carrier": "DHL",
                                                     "tracking_url": "https://carrier.example/t/1"}, clock=clock)
    assert response.status_code == 200
    [row] = pushes(session, kind="shipped")
    assert row.due_at == clock.now() and row.url == "https://carrier.example/t/1"
    assert row.title == "Your order 1001 has shipped"
    assert post(client, shop_keys, "shipments", {"id": "s-1", "order_id": "1001"}, clock=clock).json["duplicate"]
    assert len(pushes(session, kind="shipped")) == 1


def test_a_shipment_for_an_unknown_order_is_stored_without_a_push(client, session, shop_keys, clock):
    assert post(client, shop_keys, "shipments", {"id": "s-9", "order_id": "nope"}, clock=clock).status_code == 200
    assert counts(session)["Shipment"] == 1 and pushes(session) == []


GOOD = checkout_body()


@pytest.mark.parametrize("case, topic, kwargs, status, code", [
    ("wrong secret", "checkouts", {"body": GOOD, "secret": "whsec_wrong"}, 401, "bad_signature"),
    ("tampered body", "checkouts", {"raw": json.dumps(GOOD).encode(), "header": "t={t},v1=" + "0" * 64}, 401, "bad_signature"),
    ("no header", "checkouts", {"body": GOOD, "header": ""}, 401, "bad_signature"),
    ("garbled header", "checkouts", {"body": GOOD, "header": "v1=abc"}, 401, "bad_signature"),
    ("stale timestamp", "checkouts", {"body": GOOD, "dt": -301}, 401, "stale_signature"),
    ("future timestamp", "checkouts", {"body": GOOD, "dt": 301}, 401, "stale_signature"),
    ("unknown topic", "refunds", {"body": GOOD}, 404, "unknown_topic"),
    ("malformed JSON", "checkouts", {"raw": b'{"id": "x", '}, 400, "malformed"),
    ("not an object", "checkouts", {"raw": b'[1, 2]'}, 400, "malformed"),
    ("missing id", "checkouts", {"body": checkout_body(id=None)}, 422, "invalid_field"),
    ("missing total", "checkouts", {"body": checkout_body(total=None)}, 422, "invalid_field"),
    ("negative total", "checkouts", {"body": checkout_body(total=-1)}, 422, "invalid_field"),
    ("non-numeric total", "checkouts", {"body": checkout_body(total="ten")}, 422, "invalid_field"),
    ("boolean total", "checkouts", {"body": checkout_body(total=True)}, 422, "invalid_field"),
    ("sub-cent total", "checkouts", {"body": checkout_body(total=1.005)}, 422, "invalid_field"),
    ("NaN total", "checkouts", {"raw": json.dumps(checkout_body(total="NaN")).encode()}, 422, "invalid_field"),
    ("bad currency", "checkouts", {"body": checkout_body(currency="US")}, 422, "invalid_field"),
    ("script link", "checkouts", {"body": checkout_body(checkout_url="javascript:alert(1)")}, 422, "invalid_field"),
    ("negative count", "checkouts", {"body": checkout_body(item_count=-1)}, 422, "invalid_field"),
    ("unpaid order", "orders", {"body": {"id": "o", "order_id": "1", "status": "pending", "total": "1",
                                         "currency": "USD"}}, 422, "invalid_field"),
    ("order without order_id", "orders", {"body": {"id": "o", "status": "paid", "total": "1",
                                                   "currency": "USD"}}, 422, "invalid_field"),
    ("shipment bad tracking", "shipments", {"body": {"id": "s", "order_id": "1",
                                                     "tracking_url": "ftp://x.example/"}}, 422, "invalid_field"),
])
def test_bad_webhooks_get_a_clear_4xx_and_nothing_is_stored(client, session, shop_keys, clock, case, topic,
                                                            kwargs, status, code):
    kwargs = dict(kwargs)
    t = int(clock.now().timestamp()) + kwargs.pop("dt", 0)
    if "header" in kwargs and "{t}" in kwargs["header"]:
        kwargs["header"] = kwargs["header"].format(t=t)
    response = post(client, shop_keys, topic, kwargs.pop("body", None), t=t, clock=clock, **kwargs)
    assert response.status_code == status, (case, response.json)
    assert response.json["error"]["code"] == code
    assert counts(session) == {"Checkout": 0, "Order": 0, "Shipment": 0, "WebhookReceipt": 0, "Push": 0}


def test_unknown_shop_is_404(client, session, shop_keys, clock):
    data = json.dumps(GOOD).encode()
    response = client.post("/v1/webhooks/pk_nope/checkouts", data=data, content_type="application/json",
                           headers={"X-Pushcart-Signature": sign(shop_keys.secret, int(clock.now().timestamp()), data)})
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_shop"
    assert counts(session)["Checkout"] == 0


def test_a_timestamp_within_tolerance_is_accepted(client, session, shop_keys, clock):
    response = post(client, shop_keys, "checkouts", GOOD, t=int(clock.now().timestamp()) - 299, clock=clock)
    assert response.status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(["id", "checkout_token", "order_id", "status", "total", "currency", "item_count",
                          "checkout_url", "tracking_url", "items", "visitor_id", "email"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from(["checkouts", "orders", "shipments"]),
       body=st.dictionaries(fields, json_values, max_size=8))
def test_any_signed_json_gets_a_clean_answer_and_rejections_store_nothing(client, session, shop_keys, clock,
                                                                         topic, body):
    before = counts(session)
    response = post(client, shop_keys, topic, body, clock=clock)
    assert response.status_code in (200, 400, 422), response.json
    if response.status_code != 200:
        assert set(response.json["error"]) == {"code", "message"}
        assert counts(session) == before


def test_a_visitor_who_paid_without_a_cart_event_is_a_shopper_and_a_buyer(client, session, shop_keys, clock):
    order = {"id": "wh-paid", "order_id": "5001", "status": "paid", "visitor_id": "v-abc", "total": "40.00",
             "currency": "USD"}
    assert post(client, shop_keys, "orders", order, clock=clock).status_code == 200
    day = clock.now().date().isoformat()
    stats = client.get(f"/v1/admin/stats?from={day}&to={day}",
                       headers={"Authorization": f"Bearer {shop_keys.admin_token}"}).get_json()
    assert stats["all_orders"] == 1
    assert stats["funnel"] == {"visitors": 1, "subscribers": 1, "shoppers": 1, "buyers": 1, "repeat_buyers": 0}
