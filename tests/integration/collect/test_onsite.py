"""On-site messages through the merchant API, the collect calls the on-site script makes, and the
report: the seed cart rule, single-use codes, checkout pages, caps, replies that tag, tags as a
campaign segment, attributed orders; on SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from server.core.models import CouponCode, OnsiteImpression, Visitor, VisitorTag
from server.planning import segments
from server.webhooks.native import sign
from tests.factories import make_shop, make_subscription, make_visitor

ORIGIN = "https://shop.example"


@pytest.fixture
def shop(session, clock):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    return new


def admin(client, shop, method, path, body=None):
    return client.open(f"/v1/admin{path}", method=method, json=body,
                       headers={"Authorization": f"Bearer {shop.admin_token}"})


def codes(client, shop, *lines):
    response = admin(client, shop, "PUT", "/coupons/onsite", {"mode": "list"})
    assert response.status_code == 200, response.json
    assert admin(client, shop, "POST", "/coupons/onsite/codes", {"codes": list(lines)}).status_code == 201


def seed(client, shop, **content):
    body = admin(client, shop, "GET", "/onsite/template").json
    body["status"] = "active"
    body["content"].update(content)
    response = admin(client, shop, "POST", "/onsite/messages", body)
    assert response.status_code == 201, response.json
    return response.json


def events(client, shop, visitor, *urls):
    batch = {"visitor_id": visitor, "events": [{"type": "page_view", "url": ORIGIN + u} for u in urls]}
    response = client.post(f"/v1/shops/{shop.shop.public_key}/events", json=batch, headers={"Origin": ORIGIN})
    assert response.status_code == 202


def ask(client, shop, visitor, path="/cart", dwell=11, **more):
    response = client.post(f"/v1/shops/{shop.shop.public_key}/onsite", headers={"Origin": ORIGIN},
                           json={"visitor_id": visitor, "url": ORIGIN + path, "dwell": dwell, **more})
    assert response.status_code == 200, response.json
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    return response.json


def visits(client, shop, clock, visitor, n, path="/cart"):
    """``n`` visits to ``path``, a minute apart; the clock ends on the last one's start."""
    for _ in range(n):
        clock.advance(minutes=1)
        events(client, shop, visitor, path)


def test_the_seed_cart_rule_shows_on_the_third_visit_after_ten_seconds_with_a_single_use_code(client, shop, clock):
    codes(client, shop, "CART-AAA1", "CART-BBB2")
    message = seed(client, shop)
    assert message["rule"]["page"] == "cart" and message["rule"]["min_visits"] == 3
    assert message["content"]["coupon_kind"] == "onsite"

    visits(client, shop, clock, "visitor-one-0001", 2)
    assert ask(client, shop, "visitor-one-0001") == {"message": None}, "the second visit is too early"
    visits(client, shop, clock, "visitor-one-0001", 1)
    assert ask(client, shop, "visitor-one-0001", dwell=9) == {"message": None, "next": 11}
    shown = ask(client, shop, "visitor-one-0001")["message"]
    assert shown["title"] == "Still thinking it over?" and shown["code"] == "CART-AAA1"
    assert ask(client, shop, "visitor-one-0001") == {"message": None}, "once per visitor in its window"

    visits(client, shop, clock, "visitor-two-0002", 3)
    assert ask(client, shop, "visitor-two-0002")["message"]["code"] == "CART-BBB2"
    visits(client, shop, clock, "visitor-three-03", 3)
    assert ask(client, shop, "visitor-three-03")["message"]["code"] is None, "the list is used up"
    report = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["report"]
    assert (report["impressions"], report["codes"]) == (3, 2)


def test_checkout_pages_never_show_a_message_and_the_config_loads_the_script_only_where_one_may_show(
        client, shop, clock, app):
    body = {"name": "Any page", "status": "active", "rule": {"page": "any"}, "content": {"title": "Hello"}}
    assert admin(client, shop, "POST", "/onsite/messages", body).status_code == 201
    events(client, shop, "visitor-one-0001", "/")
    assert ask(client, shop, "visitor-one-0001", "/checkouts/abc")["message"] is None
    assert ask(client, shop, "visitor-one-0001", "/")["message"]["title"] == "Hello"

    def config(page):
        return client.get(f"/v1/shops/{shop.shop.public_key}/config?page={page}", headers={"Origin": ORIGIN}).json
    assert config("/")["onsite"] == f"{app.config['PUBLIC_URL']}/onsite.js?shop={shop.shop.public_key}"
    assert "onsite" not in config("/checkout")
    body["rule"] = {"page": "cart"}
    first = admin(client, shop, "GET", "/onsite/messages").json["items"][0]["id"]
    assert admin(client, shop, "PUT", f"/onsite/messages/{first}", body).status_code == 200
    assert "onsite" in config("/cart") and "onsite" not in config("/collections/shirts")
    assert admin(client, shop, "POST", f"/onsite/messages/{first}/pause").json["status"] == "paused"
    assert "onsite" not in config("/cart")


def test_the_daily_cap_holds_across_messages_and_exit_intent_waits_for_the_exit(client, shop, clock):
    made = []
    for name in ("One", "Two", "Three"):
        body = {"name": name, "status": "active", "rule": {"page": "any", "once_per_days": 7}, "content": {"title": name}}
        made.append(admin(client, shop, "POST", "/onsite/messages", body).json["id"])
    assert admin(client, shop, "PUT", "/onsite/settings", {"daily_cap": 2}).json == {"daily_cap": 2}
    events(client, shop, "visitor-one-0001", "/")
    assert [ask(client, shop, "visitor-one-0001", "/")["message"]["title"] for _ in range(2)] == ["One", "Two"]
    assert ask(client, shop, "visitor-one-0001", "/")["message"] is None
    clock.advance(hours=25)
    assert ask(client, shop, "visitor-one-0001", "/")["message"]["title"] == "Three"

    for message_id in made:
        assert admin(client, shop, "POST", f"/onsite/messages/{message_id}/pause").status_code == 200
    body = {"name": "Exit", "status": "active", "rule": {"page": "product", "exit_intent": True},
            "content": {"title": "Wait!"}}
    assert admin(client, shop, "POST", "/onsite/messages", body).status_code == 201
    events(client, shop, "visitor-two-0002", "/")
    assert ask(client, shop, "visitor-two-0002", "/products/shirt") == {"message": None, "exit": True}
    assert ask(client, shop, "visitor-two-0002", "/products/shirt", exit=True)["message"]["title"] == "Wait!"


def test_a_reply_tags_the_visitor_and_a_campaign_segment_selects_by_the_tag(client, shop, clock, session):
    body = {"name": "Who for", "status": "active", "rule": {"page": "any"},
            "content": {"title": "Who is it for?", "replies": [{"label": "Me", "tag": "self"},
                                                               {"label": "A gift", "tag": "gift"}]}}
    message = admin(client, shop, "POST", "/onsite/messages", body).json
    for key in ("visitor-one-0001", "visitor-two-0002"):
        visitor = make_visitor(session, shop.shop.id, clock.now(), visitor_key=key)
        make_subscription(session, visitor, clock.now())
    session.commit()
    shown = ask(client, shop, "visitor-one-0001", "/")["message"]
    assert shown["replies"] == ["Me", "A gift"]
    url = f"/v1/shops/{shop.shop.public_key}/onsite/{shown['token']}/reply"
    assert client.post(url, json={"visitor_id": "visitor-two-0002", "reply": 1},
                       headers={"Origin": ORIGIN}).status_code == 404, "another visitor's showing"
    assert client.post(url, json={"visitor_id": "visitor-one-0001", "reply": 3}, headers={"Origin": ORIGIN}).status_code == 422
    answer = client.post(url, json={"visitor_id": "visitor-one-0001", "reply": 1}, headers={"Origin": ORIGIN})
    assert answer.json == {"recorded": "reply", "tag": "gift"}

    session.expire_all()
    assert session.scalars(sa.select(VisitorTag.tag)).all() == ["gift"]
    conditions = segments.parse_segment([{"type": "has_tag", "tag": "gift"}])
    assert segments.count(session, shop.shop, conditions, clock.now()) == 1
    campaign = admin(client, shop, "POST", "/campaigns", {"name": "Gifts", "title": "Gift ideas", "body": "For them",
                                                           "url": ORIGIN + "/gifts", "segment": [{"type": "has_tag", "tag": "gift"}]})
    assert campaign.status_code == 201, campaign.json
    preview = admin(client, shop, "POST", f"/campaigns/{campaign.json['id']}/preview")
    assert preview.json["audience"] == 1
    report = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["report"]
    assert report["replies_by_tag"] == {"gift": 1}
    records = admin(client, shop, "GET", "/visitors").json["items"]
    assert {r["id"]: r["tags"] for r in records} == {"visitor-one-0001": ["gift"], "visitor-two-0002": []}


def test_an_order_paid_within_the_window_after_a_showing_counts_in_the_messages_report(client, shop, clock):
    message = seed(client, shop)
    visits(client, shop, clock, "visitor-one-0001", 3)
    shown = ask(client, shop, "visitor-one-0001")["message"]
    close = client.post(f"/v1/shops/{shop.shop.public_key}/onsite/{shown['token']}/close",
                        json={"visitor_id": "visitor-one-0001"}, headers={"Origin": ORIGIN})
    assert close.json == {"recorded": "close"}

    def order(ref, total, hours):
        clock.advance(hours=hours)
        data = json.dumps({"id": f"wh-{ref}", "order_id": ref, "status": "paid", "visitor_id": "visitor-one-0001",
                           "total": total, "currency": "USD"}).encode()
        response = client.post(f"/v1/webhooks/{shop.shop.public_key}/orders", data=data, content_type="application/json",
                               headers={"X-Pushcart-Signature": sign(shop.secret, int(clock.now().timestamp()), data)})
        assert response.status_code == 200, response.json

    order("1001", "59.90", 2)
    order("1002", "20.00", 80)  # 82 h after the showing: outside the 72 h window
    report = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["report"]
    assert (report["orders"], report["revenue"], report["closes"]) == (1, "59.90", 1)


def test_messages_are_validated_and_scoped_to_their_shop(client, shop, session, clock):
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"])
    session.commit()
    bad = [({"rule": {"page": "prefix"}}, "path_prefix"),
           ({"content": {"title": "x", "cta_url": "javascript:alert(1)"}}, "content.cta_url"),
           ({"content": {"title": "x", "coupon_kind": "onsite"}}, "coupon_kind"),
           ({"content": {"title": "x", "replies": [{"label": "a", "tag": "Bad Tag"}]}}, "content.replies"),
           ({"rule": {"cart_min": "1.234"}}, "rule.cart_min")]
    for change, field in bad:
        body = {"name": "m", "rule": {"page": "any"}, "content": {"title": "x"}, **change}
        response = admin(client, shop, "POST", "/onsite/messages", body)
        assert response.status_code == 422 and field in response.json["error"]["message"], (change, response.json)
    made = admin(client, shop, "POST", "/onsite/messages", {"name": "m", "rule": {}, "content": {"title": "x"}}).json
    assert admin(client, other, "GET", f"/onsite/messages/{made['id']}").status_code == 404
    assert admin(client, other, "DELETE", f"/onsite/messages/{made['id']}").status_code == 404
    assert admin(client, shop, "DELETE", f"/onsite/messages/{made['id']}").status_code == 204


def test_the_ask_is_refused_from_another_origin(client, shop):
    response = client.post(f"/v1/shops/{shop.shop.public_key}/onsite", headers={"Origin": "https://evil.example"},
                           json={"visitor_id": "visitor-one-0001", "url": "https://evil.example/cart", "dwell": 20})
    assert response.status_code == 403


def test_every_showing_takes_its_own_list_code(client, shop, clock, session):
    codes(client, shop, *[f"CODE-{i:03d}" for i in range(5)])
    seed(client, shop)
    given = []
    for n in range(5):
        key = f"visitor-{n:04d}-xx"
        visits(client, shop, clock, key, 3)
        given.append(ask(client, shop, key)["message"]["code"])
    assert sorted(given) == [f"CODE-{i:03d}" for i in range(5)]
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(CouponCode).where(CouponCode.assigned_at.is_(None))) == 0
    assert session.scalar(sa.select(sa.func.count(sa.distinct(OnsiteImpression.code_id)))) == 5


def test_an_experiment_on_a_message_shows_each_visitor_a_stable_variant_and_counts_by_variant(client, shop, clock):
    message = seed(client, shop, coupon_kind=None)
    body = {"kind": f"onsite:{message['id']}", "name": "Cart title", "slice_percent": 100, "min_sends": 1,
            "variants": [{"title": "Still thinking it over?"}, {"title": "Your cart misses you", "body": "10 % off today"}]}
    bad = admin(client, shop, "POST", "/experiments", {**body, "variants": [{"url": "javascript:x"}, {"title": "B"}]})
    assert bad.status_code == 422 and "variants.0.url" in bad.json["error"]["message"]
    assert admin(client, shop, "POST", "/experiments", {**body, "kind": "onsite:999"}).status_code == 422
    experiment = admin(client, shop, "POST", "/experiments", body)
    assert experiment.status_code == 201, experiment.json

    shown = {}
    for n in range(12):
        key = f"visitor-{n:04d}-ab"
        visits(client, shop, clock, key, 3)
        first = ask(client, shop, key)["message"]
        shown[key] = first["title"]
        if first["title"] == "Your cart misses you":
            assert first["text"] == "10 % off today"
            client.post(f"/v1/shops/{shop.shop.public_key}/onsite/{first['token']}/click",
                        json={"visitor_id": key}, headers={"Origin": ORIGIN})
    assert set(shown.values()) == {"Still thinking it over?", "Your cart misses you"}, "both variants are shown"
    results = admin(client, shop, "GET", f"/experiments/{experiment.json['id']}/results").json
    rows = {row["variant"]: row for row in results["variants"]}
    b_count = sum(1 for title in shown.values() if title == "Your cart misses you")
    assert (rows["A"]["sent"], rows["B"]["sent"]) == (12 - b_count, b_count)
    assert (rows["A"]["clicks"], rows["B"]["clicks"]) == (0, b_count)

    applied = admin(client, shop, "POST", f"/experiments/{experiment.json['id']}/apply", {"variant": "B"})
    assert applied.status_code == 200, applied.json
    content = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["content"]
    assert (content["title"], content["text"]) == ("Your cart misses you", "10 % off today")


def test_cart_bounds_and_subscribers_only_are_read_from_what_the_server_knows(client, shop, clock, session):
    body = {"name": "Big carts", "status": "active",
            "rule": {"page": "cart", "cart_min": "50.00", "items_max": 3, "subscribed": "yes"},
            "content": {"title": "Free shipping"}}
    assert admin(client, shop, "POST", "/onsite/messages", body).status_code == 201

    def cart(key, total, items):
        batch = {"visitor_id": key, "events": [{"type": "cart_update", "url": ORIGIN + "/cart", "cart": {
            "token": f"c-{key}", "total": total, "currency": "USD", "item_count": items}}]}
        client.post(f"/v1/shops/{shop.shop.public_key}/events", json=batch, headers={"Origin": ORIGIN})

    for key, total, items in (("visitor-small-01", "20.00", 1), ("visitor-big-0002", "80.00", 2),
                              ("visitor-many-003", "90.00", 5)):
        cart(key, total, items)
        visitor = session.scalars(sa.select(Visitor).where(Visitor.visitor_key == key)).one()
        make_subscription(session, visitor, clock.now())
        session.commit()  # (SQLite: the journal's drainer writes next)
    events(client, shop, "visitor-anon-0004", "/cart")
    cart("visitor-anon-0004", "99.00", 1)
    assert ask(client, shop, "visitor-small-01")["message"] is None, "below cart_min"
    assert ask(client, shop, "visitor-many-003")["message"] is None, "above items_max"
    assert ask(client, shop, "visitor-anon-0004")["message"] is None, "not subscribed"
    cart("visitor-small-01", "60.00", 2)  # the latest cart counts
    assert ask(client, shop, "visitor-small-01")["message"]["title"] == "Free shipping"
    assert ask(client, shop, "visitor-big-0002")["message"]["title"] == "Free shipping"


def test_forgetting_a_visitor_drops_their_tags_and_keeps_their_showings_anonymously(client, shop, clock, session):
    body = {"name": "Who for", "status": "active", "rule": {"page": "any"},
            "content": {"title": "Who is it for?", "replies": [{"label": "A gift", "tag": "gift"}]}}
    message = admin(client, shop, "POST", "/onsite/messages", body).json
    events(client, shop, "visitor-one-0001", "/")
    shown = ask(client, shop, "visitor-one-0001", "/")["message"]
    client.post(f"/v1/shops/{shop.shop.public_key}/onsite/{shown['token']}/reply",
                json={"visitor_id": "visitor-one-0001", "reply": 0}, headers={"Origin": ORIGIN})
    assert admin(client, shop, "DELETE", "/visitors/visitor-one-0001").status_code == 200
    session.expire_all()
    assert session.scalars(sa.select(VisitorTag)).all() == []
    assert session.scalars(sa.select(OnsiteImpression.visitor_id)).all() == [None]
    report = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["report"]
    assert (report["impressions"], report["replies_by_tag"]) == (1, {"gift": 1})
