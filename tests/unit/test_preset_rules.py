"""The five preset pushes, rule by rule, driven by an injected clock (CONTRACT section 7)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Checkout, Order, PresetSetting, PushStatus, Shipment, SubscriptionStatus
from server.planning import checkout_recovery, hooks
from server.merchant.presets import update_preset
from tests.factories import make_subscription, make_visitor
from tests.presets_support import MUG, PRODUCT, cart, deliver_due, emit, pushes, sweep

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
GRACE = timedelta(minutes=1)  # a leave is planned once no other event followed it for a minute


@pytest.fixture
def visitor(session, shop, clock):
    return make_visitor(session, shop.id, clock.now(), first_name="Alex")


@pytest.fixture
def sub(session, visitor, clock):
    return make_subscription(session, visitor, clock.now())


def paid_order(session, shop, visitor, now, ref="1001", checkout=None, total="98.00"):
    order = Order(shop_id=shop.id, order_ref=ref, visitor_id=visitor.id, status="paid",
                  checkout_id=checkout.id if checkout else None, total=Decimal(total), currency="USD",
                  items=[{"title": "Blue Mug", "price": "12.50"}], paid_at=now)
    session.add(order)
    session.flush()
    hooks.on_order_paid(session, shop, order, checkout, now)
    return order


# welcome ---------------------------------------------------------------------------------------

def test_welcome_is_planned_at_once_once_per_subscription(session, shop, visitor, sub, clock):
    hooks.on_subscription_created(session, shop, visitor, sub, clock.now())
    hooks.on_subscription_created(session, shop, visitor, sub, clock.now())
    [row] = pushes(session, kind="welcome")
    assert row.due_at == clock.now() and row.subscription_id == sub.id
    assert row.title == "Welcome to Test Shop!"
    assert row.body.startswith("Thanks for subscribing, Alex.")
    assert row.url == "https://shop.example/" and row.urgency == "high"
    assert [p.id for p in deliver_due(session, clock.now())] == [row.id]


def test_welcome_not_planned_when_disabled_or_subscription_inactive(session, shop, visitor, clock):
    update_preset(session, shop, "welcome", {"enabled": False}, clock.now())
    hooks.on_subscription_created(session, shop, visitor, make_subscription(session, visitor, clock.now()), clock.now())
    update_preset(session, shop, "welcome", {"enabled": True}, clock.now())
    gone = make_subscription(session, visitor, clock.now(), status=SubscriptionStatus.EXPIRED.value)
    hooks.on_subscription_created(session, shop, visitor, gone, clock.now())
    assert pushes(session) == []


# browse_abandonment ----------------------------------------------------------------------------

def test_browse_reminder_is_due_24h_after_leaving_and_not_a_minute_before(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    left = clock.advance(minutes=5)
    emit(session, shop, visitor, "leave", left)
    sweep(session, left + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.due_at == left + DAY
    assert row.title == "Linen Shirt is waiting for you"
    assert row.body == "Pick up where you left off at Test Shop."
    assert row.url == PRODUCT["url"] and row.image == PRODUCT["image"] and row.topic == "browse"
    assert deliver_due(session, left + DAY - timedelta(minutes=1)) == []
    assert [p.id for p in deliver_due(session, left + DAY)] == [row.id]


def test_return_visit_at_23h_cancels_the_reminder(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    left = clock.advance(minutes=1)
    emit(session, shop, visitor, "leave", left)
    sweep(session, left + GRACE)
    back = clock.advance(hours=23)
    emit(session, shop, visitor, "page_view", back, url="https://shop.example/")
    [row] = pushes(session, kind="browse_abandonment")
    assert row.status == PushStatus.CANCELLED.value and row.error == "visitor_returned"
    assert deliver_due(session, left + DAY) == []
    # The return visit ends in silence: that is a new leave, and the clock restarts from it.
    [_, again] = pushes(session, kind="browse_abandonment")
    assert again.due_at == back + timedelta(minutes=30) + DAY


def test_a_new_leave_after_a_return_restarts_the_clock(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    emit(session, shop, visitor, "page_view", clock.advance(hours=3))
    second_leave = clock.advance(minutes=2)
    emit(session, shop, visitor, "leave", second_leave)
    sweep(session, second_leave + GRACE)
    rows = pushes(session, kind="browse_abandonment")
    assert [r.status for r in rows] == [PushStatus.CANCELLED.value, PushStatus.PENDING.value]
    assert rows[1].due_at == second_leave + DAY


def test_moving_from_page_to_page_plans_and_cancels_nothing(session, shop, visitor, sub, clock):
    # The widget sends ``leave`` whenever a page is hidden, so on every navigation.
    for _ in range(5):
        emit(session, shop, visitor, "product_view", clock.advance(seconds=20), product=PRODUCT)
        emit(session, shop, visitor, "leave", clock.advance(seconds=30))
        sweep(session, clock.now() + timedelta(seconds=10))  # a dispatcher pass between two pages
    assert pushes(session) == []
    left = clock.now()
    sweep(session, left + GRACE)
    [row] = pushes(session)
    assert row.due_at == left + DAY


def test_thirty_minutes_of_silence_counts_as_leaving(session, shop, visitor, sub, clock):
    seen = clock.now()
    emit(session, shop, visitor, "product_view", seen, product=PRODUCT)
    assert deliver_due(session, seen + timedelta(minutes=29)) == []
    assert pushes(session) == []
    deliver_due(session, seen + timedelta(minutes=31))
    [row] = pushes(session, kind="browse_abandonment")
    assert row.due_at == seen + timedelta(minutes=30) + DAY
    deliver_due(session, seen + timedelta(hours=2))
    assert len(pushes(session)) == 1, "the sweep plans a leave once"


def test_sweep_handles_many_visitors_in_batches(session, shop, clock):
    from server.planning import browse_abandonment

    start = clock.now()
    for _ in range(7):
        v = make_visitor(session, shop.id, start)
        make_subscription(session, v, start)
        emit(session, shop, v, "product_view", start, product=PRODUCT)
    active = make_visitor(session, shop.id, start)
    make_subscription(session, active, start)
    emit(session, shop, active, "product_view", start, product=PRODUCT)
    emit(session, shop, active, "page_view", start + timedelta(minutes=20))
    planned = browse_abandonment.sweep(session, start + timedelta(minutes=40), batch=3)
    assert planned == 7
    assert active.engaged_since is not None, "a visitor still browsing has not left"



def _reads_of_a_sweep(session, shop, clock, leaving):
    """How many statements a sweep of ``leaving`` engaged, silent visitors sends, besides the
    inserts of their rows (one per subscription)."""
    from server.planning import browse_abandonment

    start = clock.now()
    for _ in range(leaving):
        v = make_visitor(session, shop.id, start)
        make_subscription(session, v, start)
        emit(session, shop, v, "product_view", start, product=PRODUCT)
        emit(session, shop, v, "add_to_cart", start, product=PRODUCT)
    session.flush()
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        planned = browse_abandonment.sweep(session, start + timedelta(minutes=40))
        session.flush()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert planned == leaving
    return sum(1 for s in statements if not s.lstrip().upper().startswith("INSERT INTO PUSHES"))


def test_the_leave_sweep_reads_per_batch_not_per_visitor(session, shop, clock):
    few = _reads_of_a_sweep(session, shop, clock, 2)
    clock.advance(hours=30)
    assert _reads_of_a_sweep(session, shop, clock, 9) == few

def test_second_leave_within_24h_of_a_sent_reminder_plans_nothing(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    emit(session, shop, visitor, "leave", clock.now())
    sent_at = clock.advance(DAY)
    assert len(deliver_due(session, sent_at)) == 1
    emit(session, shop, visitor, "product_view", clock.advance(minutes=10), product=MUG)
    emit(session, shop, visitor, "leave", clock.advance(minutes=10))
    deliver_due(session, clock.advance(hours=1))
    assert len(pushes(session, kind="browse_abandonment")) == 1
    # Once that 24 h window is over, a new visit and leave plans again.
    emit(session, shop, visitor, "product_view", sent_at + DAY + HOUR, product=MUG)
    emit(session, shop, visitor, "leave", sent_at + DAY + 2 * HOUR)
    sweep(session, sent_at + DAY + 2 * HOUR + GRACE)
    assert len(pushes(session, kind="browse_abandonment")) == 2


def test_cart_variant_wins_over_browse_variant(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    emit(session, shop, visitor, "add_to_cart", clock.advance(minutes=1), product=MUG, cart=cart())
    emit(session, shop, visitor, "product_view", clock.advance(minutes=1), product=PRODUCT)
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.title == "Blue Mug is waiting for you"
    assert row.body == "Pick up where you left off at Test Shop."
    assert row.image == MUG["image"] and row.url == "https://shop.example/checkout/cart-token-1"
    assert row.context["variant"] == "cart"


KETTLE = {"id": "sku-3", "title": "Kettle", "price": "39.00", "currency": "USD",
          "url": "https://shop.example/products/kettle", "image": "https://shop.example/img/kettle.jpg"}


def test_the_cart_reminder_names_the_carted_product(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=KETTLE)
    emit(session, shop, visitor, "add_to_cart", clock.advance(minutes=1), product=KETTLE,
         cart=cart(total="39.00", item_count=1, items=[KETTLE]))
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.context["variant"] == "cart"
    assert row.title == "Kettle is waiting for you"


def test_the_cart_reminder_names_a_product_still_in_the_cart(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "add_to_cart", clock.now(), product=MUG, cart=cart(item_count=1, items=[MUG]))
    emit(session, shop, visitor, "add_to_cart", clock.advance(minutes=1), product=KETTLE,
         cart=cart(item_count=2, items=[MUG, KETTLE]))
    emit(session, shop, visitor, "remove_from_cart", clock.advance(minutes=1), product=KETTLE,
         cart=cart(item_count=1, items=[MUG]))
    emit(session, shop, visitor, "product_view", clock.advance(minutes=1), product=PRODUCT)
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.title == "Blue Mug is waiting for you", "the removed kettle and the viewed shirt are not in the cart"


def test_the_cart_reminder_names_a_product_of_the_checkout_cart(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    emit(session, shop, visitor, "checkout_started", clock.advance(minutes=1),
         cart=cart(total="39.00", item_count=1, items=[{"id": "sku-3", "title": "Kettle", "quantity": 1}]))
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.title == "Kettle is waiting for you"


def test_a_cart_without_known_products_gets_the_cart_wording(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "product_view", clock.now(), product=PRODUCT)
    emit(session, shop, visitor, "checkout_started", clock.advance(minutes=1),
         cart=cart(total="39.00", item_count=3, items=None))
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.title == "Your cart is waiting for you", "not the shirt that was only viewed"
    assert row.url == "https://shop.example/checkout/cart-token-1", "the cart's checkout, not the product"


def test_an_emptied_cart_falls_back_to_the_browse_variant(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "add_to_cart", clock.now(), product=MUG, cart=cart())
    emit(session, shop, visitor, "remove_from_cart", clock.advance(minutes=1), product=MUG,
         cart=cart(total="0.00", item_count=0, items=[]))
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    [row] = pushes(session, kind="browse_abandonment")
    assert row.title == "Blue Mug is waiting for you" and row.context["variant"] == "browse"


def test_no_product_no_reminder_and_every_subscription_gets_one(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "page_view", clock.now())
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.advance(hours=1))
    assert pushes(session) == []
    second = make_subscription(session, visitor, clock.now())
    make_subscription(session, visitor, clock.now(), status=SubscriptionStatus.UNSUBSCRIBED.value)
    emit(session, shop, visitor, "product_view", clock.advance(minutes=1), product=PRODUCT)
    emit(session, shop, visitor, "leave", clock.advance(minutes=1))
    sweep(session, clock.now() + GRACE)
    assert sorted(r.subscription_id for r in pushes(session)) == [sub.id, second.id]


# checkout_recovery -----------------------------------------------------------------------------

def test_checkout_started_records_the_checkout_and_plans_step_one_at_1h(session, shop, visitor, sub, clock):
    started = clock.now()
    emit(session, shop, visitor, "checkout_started", started, cart=cart(token="tok-9"))
    checkout = session.query(Checkout).one()
    assert (checkout.token, checkout.total, checkout.visitor_id) == ("tok-9", Decimal("98.00"), visitor.id)
    [row] = pushes(session, kind="checkout_recovery")
    assert row.due_at == started + HOUR and row.step == 1
    assert row.url == "https://shop.example/checkout/tok-9"
    assert row.title == "Your order at Test Shop is almost done"
    assert row.body == "Finish checking out your 2 item(s) ($98.00) before they sell out."
    assert deliver_due(session, started + HOUR - timedelta(seconds=1)) == []
    assert len(deliver_due(session, started + HOUR)) == 1


def test_order_paid_between_step_one_and_two_stops_step_two(session, shop, visitor, sub, clock):
    update_preset(session, shop, "checkout_recovery", {"delays": [1800, 6 * 3600, 2 * 86400]}, clock.now())
    started = clock.now()
    emit(session, shop, visitor, "checkout_started", started, cart=cart())
    assert len(deliver_due(session, started + timedelta(minutes=30))) == 1
    checkout = session.query(Checkout).one()
    paid_order(session, shop, visitor, started + HOUR, checkout=checkout)
    assert checkout.paid_at == started + HOUR
    statuses = [r.status for r in pushes(session, kind="checkout_recovery")]
    assert statuses == [PushStatus.SENT.value, PushStatus.CANCELLED.value, PushStatus.CANCELLED.value]
    assert deliver_due(session, started + 3 * DAY) == []


def test_each_checkout_step_can_carry_its_own_texts(session, shop, visitor, sub, clock):
    update_preset(session, shop, "checkout_recovery", {
        "delays": [1800, 6 * 3600, 2 * 86400],
        "steps": [{}, {"title": "Still there, {{ first_name }}?", "body": "Your {{ item_count }} item(s) miss you"}],
    }, clock.now())
    emit(session, shop, visitor, "checkout_started", clock.now(), cart=cart())
    rows = pushes(session, kind="checkout_recovery")
    assert [r.step for r in rows] == [1, 2, 3]
    assert [r.title for r in rows] == ["Your order at Test Shop is almost done", "Still there, Alex?",
                                       "Your order at Test Shop is almost done"]
    assert [r.body for r in rows] == ["Finish checking out your 2 item(s) ($98.00) before they sell out.",
                                      "Your 2 item(s) miss you",
                                      "Finish checking out your 2 item(s) ($98.00) before they sell out."]


def test_checkout_steps_are_planned_once_per_checkout(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "checkout_started", clock.now(), cart=cart())
    emit(session, shop, visitor, "checkout_started", clock.advance(minutes=5), cart=cart(total="120.00"))
    assert len(pushes(session, kind="checkout_recovery")) == 1
    assert session.query(Checkout).one().total == Decimal("120.00")


def test_a_late_first_step_shifts_the_next_instead_of_bunching(session, shop, visitor, sub, clock):
    shop.quiet_hours_start, shop.quiet_hours_end = "22:00", "08:00"
    update_preset(session, shop, "checkout_recovery", {"delays": [1800, 3 * 3600]}, clock.now())
    started = clock.now().replace(hour=21, minute=45)  # step 1 due 22:15, inside quiet hours
    emit(session, shop, visitor, "checkout_started", started, cart=cart())
    first, second = pushes(session, kind="checkout_recovery")
    deliver_due(session, started + timedelta(minutes=30))
    session.refresh(first)
    morning = started.replace(hour=8, minute=0) + DAY
    assert first.status == PushStatus.PENDING.value and first.due_at == morning
    deliver_due(session, started + 3 * HOUR)
    session.refresh(second)
    assert second.status == PushStatus.PENDING.value and second.due_at >= morning
    assert [p.id for p in deliver_due(session, morning)] == [first.id]
    session.refresh(second)
    assert second.due_at == morning + timedelta(seconds=3 * 3600 - 1800)
    assert deliver_due(session, morning + 2 * HOUR) == []
    assert [p.id for p in deliver_due(session, morning + timedelta(hours=2, minutes=30))] == [second.id]


# repurchase and shipped ------------------------------------------------------------------------

def test_repurchase_is_due_7_days_after_payment_once_per_order(session, shop, visitor, sub, clock):
    paid = clock.now()
    order = paid_order(session, shop, visitor, paid)
    hooks.on_order_paid(session, shop, order, None, paid)
    [row] = pushes(session, kind="repurchase")
    assert row.due_at == paid + 7 * DAY and row.title == "Time for a refill?"
    assert "1001" in row.body
    assert deliver_due(session, paid + 7 * DAY - timedelta(minutes=1)) == []
    assert [p.id for p in deliver_due(session, paid + 7 * DAY)] == [row.id]


def test_shipped_is_at_once_with_the_tracking_url_and_exempt_from_cap_and_quiet_hours(session, shop, visitor, sub, clock):
    shop.frequency_cap_per_24h = 0
    shop.quiet_hours_start, shop.quiet_hours_end = "00:00", "23:59"
    order = paid_order(session, shop, visitor, clock.now())
    shipment = Shipment(shop_id=shop.id, shipment_ref="sh-1", order_id=order.id, order_ref="1001",
                        tracking_url="https://carrier.example/t/1Z", carrier="UPS", created_at=clock.now())
    session.add(shipment)
    session.flush()
    hooks.on_shipment(session, shop, shipment, order, clock.now())
    hooks.on_shipment(session, shop, shipment, order, clock.now())
    [row] = pushes(session, kind="shipped")
    assert (row.title, row.url, row.urgency) == ("Your order 1001 has shipped", "https://carrier.example/t/1Z", "high")
    assert row.body == "It is on its way with UPS. Tap to track it."
    assert [p.id for p in deliver_due(session, clock.now())] == [row.id]


# settings --------------------------------------------------------------------------------------

def test_a_disabled_kind_plans_nothing_and_sends_nothing(session, shop, visitor, sub, clock):
    emit(session, shop, visitor, "checkout_started", clock.now(), cart=cart(token="a"))
    update_preset(session, shop, "checkout_recovery", {"enabled": False}, clock.now())
    emit(session, shop, visitor, "checkout_started", clock.now(), cart=cart(token="b"))
    assert [r.status for r in pushes(session, kind="checkout_recovery")] == [PushStatus.CANCELLED.value]
    assert deliver_due(session, clock.now() + DAY) == []


def test_a_template_rendering_to_a_bad_link_falls_back_to_the_shop(session, shop, visitor, sub, clock):
    setting = session.query(PresetSetting).filter_by(shop_id=shop.id, kind="welcome").one()
    setting.url = "javascript:alert(1)"  # stored behind validation's back
    setting.image = "{{ product_image }}"
    hooks.on_subscription_created(session, shop, visitor, sub, clock.now())
    [row] = pushes(session)
    assert row.url == "https://shop.example/" and row.image is None


def test_prices_are_formatted_with_the_currency():
    from server.planning.rendering import format_money

    assert format_money("49", "USD") == "$49.00"
    assert format_money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert format_money("1200", "JPY") == "¥1,200"
    assert format_money("10", "SEK") == "10.00 SEK"
    assert format_money("abc", "USD") == "" and format_money(None, "USD") == ""


def test_checkout_data_from_a_widget_cart_drops_odd_fields():
    data = hooks.checkout_from_cart({"token": "t", "total": "-5", "currency": "usd", "item_count": True,
                                     "checkout_url": "javascript:x", "items": [{"a": 1}, "junk"]})
    assert data == checkout_recovery.CheckoutData(token="t", currency="USD", items=[{"a": 1}])
    assert hooks.checkout_from_cart({"total": "5"}) is None


def test_a_checkout_token_arriving_twice_at_once_is_stored_once(session, shop, visitor, sub, clock, monkeypatch):
    emit(session, shop, visitor, "checkout_started", clock.now(), cart=cart(token="race"))
    real_find = checkout_recovery.find
    calls = []

    def find_missing_once(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)  # the other request stored it in between

    monkeypatch.setattr(checkout_recovery, "find", find_missing_once)
    data = hooks.checkout_from_cart(cart(token="race", total="5.00"))
    checkout = checkout_recovery.record(session, shop, data, visitor, clock.now())
    assert session.query(Checkout).count() == 1 and checkout.total == Decimal("5.00")
    assert len(pushes(session, kind="checkout_recovery")) == 1
