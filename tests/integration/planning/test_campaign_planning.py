"""Campaign segments and planning against hand-built scenarios, on SQLite and PostgreSQL.

Each segment condition is checked against a shop whose visitors were built so that every
condition picks a different, hand-listed set; planning is checked for its rate spread, its
local-time rule, idempotence, batching, cancelling, and the send-time policy (cap, quiet hours).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Campaign, CouponCode, Event, Order, Push
from server.delivery import policy
from server.merchant import campaign_admin as service
from server.merchant import coupon_admin as coupon_service
from server.merchant.coupon_admin import CouponUpdate
from server.planning import campaigns as planner
from server.planning import countries, segments
from tests.dashboard_seed import make_push
from tests.factories import make_shop, make_subscription, make_visitor

ORIGIN = "https://shop.example"
ENDPOINTS = {
    "fcm": "https://fcm.googleapis.com/fcm/send/",
    "mozilla": "https://updates.push.services.mozilla.com/wpush/v2/",
    "apple": "https://web.push.apple.com/",
    "wns": "https://db5p.notify.windows.com/w/?token=",
}


def _event(session, visitor, type_, at, *, url=None, product=None):
    session.add(Event(shop_id=visitor.shop_id, visitor_id=visitor.id, type=type_, occurred_at=at, url=url,
                      product=product))


def _order(session, visitor, ref, at, total="10.00"):
    session.add(Order(shop_id=visitor.shop_id, order_ref=ref, visitor_id=visitor.id, status="paid",
                      total=Decimal(total), currency="USD", paid_at=at))


@pytest.fixture
def scenario(session, clock):
    """Shop ``main`` (zone Europe/Berlin) with visitors a..e and one visitor of another shop."""
    now = clock.now()
    day = timedelta(days=1)
    main = make_shop(session, now, origins=[ORIGIN]).shop
    main.timezone = "Europe/Berlin"
    other = make_shop(session, now, name="Other", origins=["https://other.example"]).shop
    people = {}

    def person(name, *, shop=main, endpoint="fcm", last=now, status="active", sub_tz=None, tz=None,
               locale=None, first_name=None):
        visitor = make_visitor(session, shop.id, now - 200 * day, timezone=tz, locale=locale,
                               first_name=first_name, visitor_key=f"v-{name}")
        visitor.last_event_at = last
        sub = make_subscription(session, visitor, now - 100 * day, endpoint=ENDPOINTS[endpoint] + name,
                                status=status, timezone=sub_tz)
        people[name] = (visitor, sub)
        return visitor

    a = person("a", last=now - 2 * day, sub_tz="Europe/Berlin", locale="de-DE", first_name="Anna")
    _event(session, a, "product_view", now - 2 * day, url=f"{ORIGIN}/collections/shirts/linen",
           product={"id": "sku-1", "title": "Linen"})
    b = person("b", endpoint="mozilla", last=now - 1 * day, tz="America/New_York", locale="en-US")
    _event(session, b, "add_to_cart", now - 1 * day, url=f"{ORIGIN}/products/x")
    c = person("c", endpoint="apple", last=now - 2 * day, tz="Europe/Vienna", locale="de_AT")
    _event(session, c, "add_to_cart", now - 3 * day)
    _order(session, c, "c-1", now - 2 * day)
    d = person("d", endpoint="wns", last=now - 40 * day, locale="dev")  # no zone: the shop's (Berlin)
    _event(session, d, "product_view", now - 40 * day, url=f"{ORIGIN}/products/linen", product={"id": "sku-1"})
    _event(session, d, "page_view", now - 40 * day, url=f"{ORIGIN}/collections/shoes/red")
    _order(session, d, "d-1", now - 100 * day)
    e = person("e", status="expired", sub_tz="Europe/Berlin")  # not active: never in a segment
    _event(session, e, "add_to_cart", now - 1 * day)
    x = person("x", shop=other, sub_tz="Europe/Berlin")  # another shop's visitor: never either
    _event(session, x, "product_view", now - 1 * day, url="https://other.example/collections/shirts",
           product={"id": "sku-1"})
    # A collection URL on a foreign origin does not count for the main shop.
    _event(session, b, "page_view", now - 1 * day, url="https://elsewhere.example/collections/shirts")
    session.commit()
    return main, people


def _names(session, shop, people, conditions, now):
    parsed = segments.parse_segment(conditions)
    rows = segments.page(session, shop, parsed, now, after_id=0, max_id=None, limit=100)
    by_sub = {sub.id: name for name, (_, sub) in people.items()}
    found = {by_sub[row.id] for row in rows}
    assert segments.count(session, shop, parsed, now) == len(found)
    return found


@pytest.mark.parametrize("conditions, expected", [
    ([], {"a", "b", "c", "d"}),
    ([{"type": "all"}], {"a", "b", "c", "d"}),
    ([{"type": "viewed_product", "product_id": "sku-1", "days": 7}], {"a"}),
    ([{"type": "viewed_product", "product_id": "sku-1", "days": 60}], {"a", "d"}),
    ([{"type": "viewed_product", "product_id": "sku-2", "days": 60}], set()),
    ([{"type": "viewed_collection", "path_prefix": "/collections/shirts", "days": 7}], {"a"}),
    ([{"type": "viewed_collection", "path_prefix": "/collections/", "days": 60}], {"a", "d"}),
    ([{"type": "carted_not_bought", "days": 7}], {"b"}),  # c paid after carting; e is not active
    ([{"type": "bought"}], {"c", "d"}),
    ([{"type": "bought", "days": 30}], {"c"}),
    ([{"type": "last_seen", "days": 7}], {"a", "b", "c"}),
    ([{"type": "not_seen", "days": 30}], {"d"}),
    ([{"type": "locale", "prefix": "de"}], {"a", "c"}),  # "dev" is not German
    ([{"type": "locale", "prefix": "en-us"}], {"b"}),
    ([{"type": "country", "code": "DE"}], {"a", "d"}),  # d has no zone: the shop's Europe/Berlin
    ([{"type": "country", "code": "at"}], {"c"}),
    ([{"type": "country", "code": "US"}], {"b"}),
    ([{"type": "browser", "name": "chrome"}], {"a"}),
    ([{"type": "browser", "name": "firefox"}], {"b"}),
    ([{"type": "browser", "name": "safari"}], {"c"}),
    ([{"type": "browser", "name": "edge_legacy"}], {"d"}),
    ([{"type": "locale", "prefix": "de"}, {"type": "bought"}], {"c"}),  # AND
    ([{"type": "country", "code": "DE"}, {"type": "browser", "name": "chrome"},
      {"type": "last_seen", "days": 7}], {"a"}),
])
def test_each_segment_condition_picks_the_hand_listed_subscribers(session, clock, scenario, conditions, expected):
    shop, people = scenario
    assert _names(session, shop, people, conditions, clock.now()) == expected


@pytest.mark.parametrize("conditions, message", [
    ({"type": "all"}, "segment: a list"),
    ([{"type": "gender"}], "type must be one of"),
    ([{"type": "viewed_product", "days": 3}], "product_id"),
    ([{"type": "last_seen", "days": 0}], "days"),
    ([{"type": "country", "code": "XX"}], "no time zone is known"),
    ([{"type": "browser", "name": "opera"}], "name"),
    ([{"type": "viewed_collection", "path_prefix": "collections"}], "path_prefix"),
    ([{"type": "all", "extra": 1}], "extra"),
])
def test_a_bad_segment_is_refused_naming_the_condition(conditions, message):
    with pytest.raises(service.Invalid) as raised:
        segments.parse_segment(conditions)
    assert message in raised.value.message


def test_the_zone_table_maps_zones_to_their_principal_country():
    assert countries.zone_countries()["Europe/Berlin"] == "DE"
    assert "America/Chicago" in countries.zones_of("us")


def _campaign(session, shop, now, **fields):
    data = service.CampaignIn(name=fields.pop("name", "Spring sale"), title=fields.pop("title", "Hi {{ first_name }}"),
                              **fields)
    campaign = service.create_campaign(session, shop, data, now)
    session.commit()
    return campaign


def _audience(session, clock, n, **visitor_fields):
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    subs = [make_subscription(session, make_visitor(session, shop.id, clock.now(), **visitor_fields), clock.now())
            for _ in range(n)]
    session.commit()
    return shop, subs


def _rows(session, campaign_id):
    return list(session.scalars(sa.select(Push).where(Push.group_key == f"campaign:{campaign_id}")
                                .order_by(Push.due_at, Push.id)))


def test_a_throttled_campaign_spreads_due_at_at_its_rate_across_batches(session, clock):
    shop, subs = _audience(session, clock, 25)
    campaign = _campaign(session, shop, clock.now(), rate_per_minute=10)
    service.send_campaign(session, shop, campaign.id, service.SendIn(mode="now"), clock.now())
    session.commit()
    start = clock.now()
    passes = 0
    while session.get(Campaign, campaign.id).planned_at is None:
        planner.sweep(session, clock.now(), {"CAMPAIGN_PLAN_BATCH": 7})  # 7 + 7 + 7 + 4
        session.commit()
        passes += 1
    assert passes == 4
    rows = _rows(session, campaign.id)
    assert [r.subscription_id for r in rows] == [s.id for s in subs]
    assert [r.due_at for r in rows] == [start + timedelta(seconds=6 * i) for i in range(25)]
    per_minute = {}
    for row in rows:
        per_minute[(row.due_at - start) // timedelta(minutes=1)] = per_minute.get(
            (row.due_at - start) // timedelta(minutes=1), 0) + 1
    assert per_minute == {0: 10, 1: 10, 2: 5}
    assert {r.kind for r in rows} == {"campaign"} and rows[0].title == "Hi"
    assert rows[0].context == {"campaign_id": campaign.id} and rows[0].status == "pending"
    assert (rows[0].ttl, rows[0].url, rows[0].created_at) == (86400, f"{ORIGIN}/", start)
    assert session.get(Campaign, campaign.id).targeted == 25


def _plan_twice(session, shop, campaign, clock, count: int) -> None:
    """Send ``campaign``, plan its ``count`` rows, then plan the same batch again (as a second
    worker would): the second sweep stores nothing."""
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    assert planner.sweep(session, clock.now()) == count
    session.commit()
    again = session.get(Campaign, campaign.id)
    again.plan_cursor, again.planned_at = 0, None
    session.commit()
    assert planner.sweep(session, clock.now()) == 0
    session.commit()


def test_planning_again_stores_nothing_twice(session, clock):
    shop, subs = _audience(session, clock, 5)
    campaign = _campaign(session, shop, clock.now())
    _plan_twice(session, shop, campaign, clock, 5)
    rows = _rows(session, campaign.id)
    assert sorted(r.dedupe_key for r in rows) == sorted(f"campaign:{campaign.id}:{s.id}" for s in subs)


def test_a_campaign_at_a_time_is_planned_only_from_that_time(session, clock):
    shop, _subs = _audience(session, clock, 2)
    campaign = _campaign(session, shop, clock.now())
    at = clock.now() + timedelta(hours=5)
    sent = service.send_campaign(session, shop, campaign.id, service.SendIn(mode="at", send_at=at), clock.now())
    assert sent.status == "scheduled"
    session.commit()
    assert planner.sweep(session, clock.now() + timedelta(hours=4, minutes=59)) == 0
    assert planner.sweep(session, at) == 2
    session.commit()
    assert {r.due_at for r in _rows(session, campaign.id)} == {at}
    assert session.get(Campaign, campaign.id).status == "sending"


def test_local_time_sends_each_subscriber_at_nine_in_their_own_zone(session, clock):
    clock.set(datetime(2026, 3, 10, 6, 0, tzinfo=timezone.utc))  # 07:00 in Berlin, 02:00 in New York
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    berlin = make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now(),
                               timezone="Europe/Berlin")
    new_york = make_subscription(session, make_visitor(session, shop.id, clock.now(), timezone="America/New_York"),
                                 clock.now())
    tokyo = make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now(), timezone="Asia/Tokyo")
    session.commit()
    campaign = _campaign(session, shop, clock.now())
    service.send_campaign(session, shop, campaign.id, service.SendIn(mode="local", local_time="09:00"), clock.now())
    session.commit()
    assert planner.sweep(session, clock.now()) == 3
    session.commit()
    due = {r.subscription_id: r.due_at for r in _rows(session, campaign.id)}
    assert due[berlin.id] == datetime(2026, 3, 10, 8, 0, tzinfo=timezone.utc)  # 09:00 CET
    assert due[new_york.id] == datetime(2026, 3, 10, 13, 0, tzinfo=timezone.utc)  # 09:00 EDT (DST since 8 March)
    # Tokyo's 09:00 today (00:00 UTC) has passed: its next one, tomorrow.
    assert due[tokyo.id] == datetime(2026, 3, 11, 0, 0, tzinfo=timezone.utc)


def test_local_time_with_a_rate_spreads_each_zone_from_its_own_nine(session, clock):
    clock.set(datetime(2026, 3, 10, 6, 0, tzinfo=timezone.utc))
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    for zone in ("Europe/Berlin", "Europe/Paris", "America/New_York"):
        make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now(), timezone=zone)
    session.commit()
    campaign = _campaign(session, shop, clock.now(), rate_per_minute=1)
    service.send_campaign(session, shop, campaign.id, service.SendIn(mode="local", local_time="09:00"), clock.now())
    session.commit()
    planner.sweep(session, clock.now())
    session.commit()
    assert [r.due_at.strftime("%H:%M") for r in _rows(session, campaign.id)] == ["08:00", "08:01", "13:00"]


def test_cancel_stops_the_plan_and_cancels_pending_rows(session, clock):
    shop, _subs = _audience(session, clock, 6)
    campaign = _campaign(session, shop, clock.now(), rate_per_minute=60)
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    planner.sweep(session, clock.now(), {"CAMPAIGN_PLAN_BATCH": 4})
    session.commit()
    first = _rows(session, campaign.id)[0]
    first.status, first.sent_at = "sent", clock.now()  # one already went out
    session.commit()
    _, cancelled = service.cancel_campaign(session, shop, campaign.id, clock.now())
    session.commit()
    assert cancelled == 3
    assert planner.sweep(session, clock.now()) == 0  # the last two are never planned
    session.commit()
    assert sorted(r.status for r in _rows(session, campaign.id)) == ["cancelled"] * 3 + ["sent"]
    with pytest.raises(service.Conflict):
        service.cancel_campaign(session, shop, campaign.id, clock.now())


def test_a_campaign_is_sent_once_every_row_is_planned_and_final(session, clock):
    shop, _subs = _audience(session, clock, 2)
    campaign = _campaign(session, shop, clock.now())
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    planner.sweep(session, clock.now())
    session.commit()
    assert session.get(Campaign, campaign.id).status == "sending"
    for row in _rows(session, campaign.id):
        row.status = "sent"
    session.commit()
    planner.sweep(session, clock.now())
    session.commit()
    session.expire_all()
    assert session.get(Campaign, campaign.id).status == "sent"


def test_the_frequency_cap_and_quiet_hours_hold_campaign_pushes(session, clock):
    shop, (capped, free) = _audience(session, clock, 2)
    shop.frequency_cap_per_24h = 2
    visitor = capped.visitor_id
    from server.core.models import Visitor
    for hours in (1, 2):
        make_push(session, session.get(Visitor, visitor), "browse_abandonment",
                  clock.now() - timedelta(hours=hours), subscription_id=capped.id)
    session.commit()
    campaign = _campaign(session, shop, clock.now())
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    planner.sweep(session, clock.now())
    session.commit()
    rows = {r.subscription_id: r for r in _rows(session, campaign.id)}
    decisions = policy.gate_many(session, [rows[capped.id], rows[free.id]], clock.now())
    assert [(d.action, d.reason) for d in decisions] == [("skip", "frequency_cap"), ("send", None)]

    shop.quiet_hours_start, shop.quiet_hours_end = "10:00", "14:00"  # 12:00 UTC, the shop's zone UTC
    session.commit()
    decision = policy.gate(session, rows[free.id], clock.now())
    assert (decision.action, decision.until) == ("defer", clock.now().replace(hour=14))


def test_a_campaign_whose_stored_segment_no_longer_parses_is_stopped_not_retried_forever(session, clock):
    shop, _subs = _audience(session, clock, 2)
    broken = _campaign(session, shop, clock.now())
    fine = _campaign(session, shop, clock.now(), name="Fine")
    for campaign in (broken, fine):
        service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    broken.segment = [{"type": "country", "code": "QQ"}]  # as if the zone table lost that country
    session.commit()
    assert planner.sweep(session, clock.now()) == 2  # the other campaign is planned all the same
    session.commit()
    session.expire_all()
    assert session.get(Campaign, broken.id).status == "cancelled"
    assert len(_rows(session, fine.id)) == 2 and _rows(session, broken.id) == []


def test_the_audience_is_who_was_subscribed_when_planning_started(session, clock):
    shop, subs = _audience(session, clock, 3)
    campaign = _campaign(session, shop, clock.now())
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    planner.sweep(session, clock.now(), {"CAMPAIGN_PLAN_BATCH": 2})
    session.commit()
    late = make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now())  # mid-plan
    session.commit()
    planner.sweep(session, clock.now(), {"CAMPAIGN_PLAN_BATCH": 2})
    session.commit()
    assert [r.subscription_id for r in _rows(session, campaign.id)] == [s.id for s in subs]
    assert late.id not in {r.subscription_id for r in _rows(session, campaign.id)}
    assert session.get(Campaign, campaign.id).planned_at is not None


def test_two_workers_never_plan_the_same_batch(app, session, clock):
    """PostgreSQL: the sweep locks a campaign it plans (SKIP LOCKED), so a second worker passes it by."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite runs one worker (its write lock serialises the sweeps)")
    from server.core.db import get_db

    shop, _subs = _audience(session, clock, 4)
    campaign = _campaign(session, shop, clock.now(), rate_per_minute=60)
    service.send_campaign(session, shop, campaign.id, service.SendIn(), clock.now())
    session.commit()
    other = get_db(app).sessionmaker()
    try:
        assert planner.sweep(session, clock.now(), {"CAMPAIGN_PLAN_BATCH": 2}) == 2  # holds the lock
        assert planner.sweep(other, clock.now(), {"CAMPAIGN_PLAN_BATCH": 2}) == 0  # skips it
        other.commit()
        session.commit()
        assert planner.sweep(other, clock.now(), {"CAMPAIGN_PLAN_BATCH": 2}) == 2  # the next batch
        other.commit()
    finally:
        other.close()
    rows = _rows(session, campaign.id)
    assert [r.due_at for r in rows] == [clock.now() + timedelta(seconds=i) for i in range(4)]


def test_a_replanned_batch_takes_no_second_list_code(session, clock):
    shop, subs = _audience(session, clock, 2)
    update = CouponUpdate(mode="list")
    coupon_service.update_coupon(session, shop, "campaign", update, clock.now())
    coupon_service.upload_codes(session, shop, "campaign", ["A-1", "B-2", "C-3"], clock.now())
    campaign = _campaign(session, shop, clock.now(), title="Code {{ coupon }}")
    _plan_twice(session, shop, campaign, clock, 2)
    assert coupon_service.coupon_as_json(session, shop, "campaign")["remaining"] == 1
    codes = dict(session.execute(sa.select(CouponCode.subscription_id, CouponCode.code)
                                 .where(CouponCode.assigned_at.is_not(None))).all())
    assert {row.subscription_id: row.title for row in _rows(session, campaign.id)} == {
        sub_id: f"Code {code}" for sub_id, code in codes.items()}
    assert set(codes) == {s.id for s in subs}


@pytest.mark.parametrize("rate", [None, 7])
def test_the_database_plans_the_same_rows_as_python_would(session, clock, rate):
    # PostgreSQL plans a batch in one INSERT ... SELECT; the rows must be the ones the row-by-row
    # planner makes: texts per first name, due times spread at the rate, slots carried on.
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the set-based planner is PostgreSQL's")
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    for i in range(9):
        visitor = make_visitor(session, shop.id, clock.now(), first_name=(None, "Anna", "Ben")[i % 3])
        make_subscription(session, visitor, clock.now())
    session.commit()
    made = {}
    for way in (planner._plan_in_python, planner._plan_in_sql):
        campaign = _campaign(session, shop, clock.now(), body="{{ first_name or 'friend' }}, {{ shop_name }}",
                             rate_per_minute=rate)
        service.send_campaign(session, shop, campaign.id, service.SendIn(mode="now"), clock.now())
        session.commit()
        campaign = session.get(Campaign, campaign.id)
        campaign.audience_max_id = 10**9
        spreader = planner.Spreader(rate, {})
        batches = [way(session, campaign, shop, [], spreader, clock.now(), 4)]
        campaign.plan_cursor = batches[-1][1]
        batches.append(way(session, campaign, shop, [], spreader, clock.now(), 4))
        session.commit()
        made[way.__name__] = ([b[0::2] for b in batches], spreader.slots,
                              [(r.subscription_id, r.visitor_id, r.due_at, r.title, r.body, r.url,
                               r.context == {"campaign_id": campaign.id}, r.status)
                               for r in _rows(session, campaign.id)])
    assert made["_plan_in_sql"] == made["_plan_in_python"]
    assert made["_plan_in_sql"][0] == [(4, 4), (4, 4)]
    assert {row[3] for row in made["_plan_in_sql"][2]} == {"Hi", "Hi Anna", "Hi Ben"}
