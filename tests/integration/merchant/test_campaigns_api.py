"""The campaigns API (Bearer admin token): CRUD, clear 422s and 409s, preview, send, cancel,
the campaign's own stats against a hand-counted scenario, and one campaign end to end through
``web-push-testing`` (a real push service that decrypts what it gets)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.core.models import Campaign, CouponCode, Push
from server.core.tokens import make_click_token, read_click_token
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.webhooks.native import sign
from tests.dashboard_seed import make_push
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.planning.test_presets_e2e import dispatch

ORIGIN = "https://shop.example"


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def auth(new):
    return {"Authorization": f"Bearer {new.admin_token}"}


def _order(client, new, clock, webhook_id, order_id, visitor_key, total):
    body = json.dumps({"id": webhook_id, "order_id": order_id, "status": "paid", "visitor_id": visitor_key,
                       "total": total, "currency": "USD"}).encode()
    response = client.post(f"/v1/webhooks/{new.shop.public_key}/orders", data=body, headers={
        "Content-Type": "application/json", "X-Pushcart-Signature": sign(new.secret, int(clock.now().timestamp()), body)})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_campaign_crud_and_its_errors(client, session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"])
    session.commit()
    assert client.get("/v1/admin/campaigns").status_code == 401
    created = client.post("/v1/admin/campaigns", headers=auth(new), json={
        "name": "Spring", "title": "Hi {{ first_name }}", "body": "{{ shop_name }} sale", "url": f"{ORIGIN}/sale",
        "segment": [{"type": "locale", "prefix": "de"}], "rate_per_minute": 100})
    assert created.status_code == 201, created.json
    campaign = created.json
    assert (campaign["status"], campaign["segment"], campaign["send_mode"]) == (
        "draft", [{"type": "locale", "prefix": "de"}], "now")
    cid = campaign["id"]

    for body, field in (({"title": "x"}, "name"), ({"name": "x"}, "title"),
                        ({"name": "x", "title": "{{ oops"}, "title"),
                        ({"name": "x", "title": "t", "url": "javascript:alert(1)"}, "url"),
                        ({"name": "x", "title": "t", "segment": [{"type": "nope"}]}, "segment.0"),
                        ({"name": "x", "title": "t", "rate_per_minute": 0}, "rate_per_minute"),
                        ({"name": "x", "title": "t", "local_time": "25:00"}, "local_time"),
                        ({"name": "x", "title": "t", "colour": "red"}, "colour")):
        response = client.post("/v1/admin/campaigns", headers=auth(new), json=body)
        assert response.status_code == 422, body
        assert response.json["error"]["message"].startswith(field), response.json

    changed = client.put(f"/v1/admin/campaigns/{cid}", headers=auth(new), json={"name": "Spring sale"})
    assert changed.status_code == 200 and changed.json["name"] == "Spring sale"
    listed = client.get("/v1/admin/campaigns", headers=auth(new)).json
    assert [c["id"] for c in listed["items"]] == [cid] and listed["items"][0]["stats"]["sent"] == 0
    # Another shop's token sees none of it.
    assert client.get(f"/v1/admin/campaigns/{cid}", headers=auth(other)).status_code == 404
    assert client.get("/v1/admin/campaigns", headers=auth(other)).json["items"] == []
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=auth(other), json={}).status_code == 404

    # Sending: a time is needed for "at" (and not in the past), a local time for "local".
    for body, field in (({"mode": "at"}, "send_at"),
                        ({"mode": "at", "send_at": (clock.now() - timedelta(hours=1)).isoformat()}, "send_at"),
                        ({"mode": "at", "send_at": "2026-01-05T13:00:00"}, "send_at"),  # no offset
                        ({"mode": "local"}, "local_time"), ({"mode": "later"}, "mode")):
        response = client.post(f"/v1/admin/campaigns/{cid}/send", headers=auth(new), json=body)
        assert response.status_code == 422 and response.json["error"]["message"].startswith(field), response.json
    assert client.post(f"/v1/admin/campaigns/{cid}/cancel", headers=auth(new)).status_code == 409  # a draft
    at = (clock.now() + timedelta(days=1)).isoformat()
    scheduled = client.post(f"/v1/admin/campaigns/{cid}/send", headers=auth(new), json={"mode": "at", "send_at": at})
    assert scheduled.status_code == 202 and scheduled.json["status"] == "scheduled"
    assert client.put(f"/v1/admin/campaigns/{cid}", headers=auth(new), json={"name": "x"}).status_code == 409
    assert client.delete(f"/v1/admin/campaigns/{cid}", headers=auth(new)).status_code == 409
    cancelled = client.post(f"/v1/admin/campaigns/{cid}/cancel", headers=auth(new))
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert client.delete(f"/v1/admin/campaigns/{cid}", headers=auth(new)).status_code == 204
    assert client.get(f"/v1/admin/campaigns/{cid}", headers=auth(new)).status_code == 404


def test_preview_counts_the_audience_and_renders_for_a_subscriber(client, session, clock):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    german = make_visitor(session, new.shop.id, clock.now(), first_name="Jonas", locale="de-DE")
    make_subscription(session, german, clock.now())
    make_subscription(session, make_visitor(session, new.shop.id, clock.now(), locale="fr-FR"), clock.now())
    session.commit()
    cid = client.post("/v1/admin/campaigns", headers=auth(new), json={
        "name": "N", "title": "Hallo {{ first_name }}", "body": "Neu bei {{ shop_name }}",
        "segment": [{"type": "locale", "prefix": "de"}]}).json["id"]
    preview = client.post(f"/v1/admin/campaigns/{cid}/preview", headers=auth(new))
    assert preview.status_code == 200, preview.json
    assert preview.json["audience"] == 1 and preview.json["sample_is_subscriber"] is True
    assert preview.json["sample"]["title"] == "Hallo Jonas"
    assert preview.json["sample"]["body"] == "Neu bei Linen & Co" and preview.json["sample"]["url"] == f"{ORIGIN}/"
    # Unsaved edits are previewed, not stored.
    edited = client.post(f"/v1/admin/campaigns/{cid}/preview", headers=auth(new),
                         json={"title": "Hi", "segment": []})
    assert (edited.json["audience"], edited.json["sample"]["title"]) == (2, "Hi")
    assert client.get(f"/v1/admin/campaigns/{cid}", headers=auth(new)).json["title"] == "Hallo {{ first_name }}"


def test_campaign_stats_match_a_hand_counted_scenario(app, client, session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    people = [make_visitor(session, new.shop.id, clock.now(), visitor_key=f"stats-{i}") for i in range(5)]
    for visitor in people:
        make_subscription(session, visitor, clock.now())
    session.commit()
    cid = client.post("/v1/admin/campaigns", headers=auth(new), json={"name": "S", "title": "T"}).json["id"]
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=auth(new), json={"mode": "now"}).status_code == 202
    with app.app_context():
        from server.planning import campaigns as planner
        planner.sweep(session, clock.now())
    session.commit()
    rows = {r.visitor_id: r for r in session.scalars(sa.select(Push).where(Push.group_key == f"campaign:{cid}"))}
    # Hand-set outcomes: 3 sent, 1 failed, 1 expired.
    for i, status in enumerate(("sent", "sent", "sent", "failed", "expired")):
        rows[people[i].id].status = status
        rows[people[i].id].sent_at = clock.now() if status == "sent" else None
    other_push = make_push(session, people[2], "browse_abandonment", clock.now())
    session.commit()
    secret = app.config["SECRET_KEY"]
    clock.advance(minutes=5)
    # Clicks: visitor 0 twice, visitor 1 once; visitor 2 clicks the campaign, then a browse reminder.
    for push in (rows[people[0].id], rows[people[0].id], rows[people[1].id], rows[people[2].id]):
        assert client.get(f"/c/{make_click_token(secret, push.id)}").status_code == 302
    clock.advance(minutes=5)
    assert client.get(f"/c/{make_click_token(secret, other_push.id)}").status_code == 302
    clock.advance(hours=1)
    _order(client, new, clock, "w1", "o1", "stats-0", "40.00")  # campaign (visitor 0)
    _order(client, new, clock, "w2", "o2", "stats-0", "2.50")  # campaign again (same latest click)
    _order(client, new, clock, "w3", "o3", "stats-1", "7.25")  # campaign (visitor 1)
    _order(client, new, clock, "w4", "o4", "stats-2", "99.00")  # the browse reminder was clicked last
    _order(client, new, clock, "w5", "o5", "stats-3", "5.00")  # never clicked
    stats = client.get(f"/v1/admin/campaigns/{cid}/stats", headers=auth(new)).json
    assert stats == {"targeted": 5, "planned": 5, "pending": 0, "sent": 3, "failed": 2, "skipped": 0,
                     "cancelled": 0, "clicks": 4, "unique_clicks": 3, "ctr": 1.0, "orders": 3, "gmv": "49.75",
                     "currency": "USD"}
    day = clock.now().date().isoformat()
    by_kind = client.get(f"/v1/admin/stats?from={day}&to={day}", headers=auth(new)).json["by_kind"]
    assert by_kind["campaign"]["orders"] == 3 and by_kind["campaign"]["gmv"] == "49.75"
    records = client.get("/v1/admin/pushes?kind=campaign", headers=auth(new))
    assert records.status_code == 200 and records.json["total"] == 5


def shop_without_welcome(app, client, session, clock):
    """A shop whose welcome push is off (so a real push service receives only the campaign), its
    admin headers and the VAPID public key its subscriptions are made with."""
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    admin = auth(new)
    assert client.put("/v1/admin/events/welcome", headers=admin, json={"enabled": False}).status_code == 200
    return new, admin, public_key_b64(get_vapid(app))


def test_a_campaign_end_to_end_through_a_real_push_service(app, client, session, clock, web_push_testing):
    new, admin, key = shop_without_welcome(app, client, session, clock)
    inboxes = {}
    for visitor, locale in (("visitor-de", "de-DE"), ("visitor-fr", "fr-FR")):
        service = web_push_testing.subscribe(key)
        inboxes[visitor] = service["clientHash"]
        response = client.post(f"/v1/shops/{new.shop.public_key}/subscriptions", headers={"Origin": ORIGIN}, json={
            "visitor_id": visitor, "locale": locale, "timezone": "Europe/Berlin",
            "subscription": {"endpoint": service["endpoint"], "expirationTime": None, "keys": service["keys"]}})
        assert response.status_code == 201, response.json
    client.post(f"/v1/shops/{new.shop.public_key}/events", headers={"Origin": ORIGIN}, json={
        "visitor_id": "visitor-de", "events": [{"type": "identify", "first_name": "Jonas"}]})

    created = client.post("/v1/admin/campaigns", headers=admin, json={
        "name": "Sommer", "title": "Hallo {{ first_name }}!", "body": "Sommerschlussverkauf bei {{ shop_name }}",
        "url": f"{ORIGIN}/sale", "segment": [{"type": "locale", "prefix": "de"}]})
    cid = created.json["id"]
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=admin, json={"mode": "now"}).status_code == 202
    assert dispatch(app, clock.now()) == {"planned": 1, "sent": 1, "failed": 0, "expired": 0, "skipped": 0}

    [message] = web_push_testing.notifications(inboxes["visitor-de"])
    assert (message["kind"], message["title"], message["body"]) == (
        "campaign", "Hallo Jonas!", "Sommerschlussverkauf bei Linen & Co")
    assert web_push_testing.notifications(inboxes["visitor-fr"]) == []  # outside the segment: nothing
    token = message["url"].rsplit("/c/", 1)[1]
    assert read_click_token(app.config["SECRET_KEY"], token) == message["push_id"]
    clock.advance(minutes=2)
    click = client.get(f"/c/{token}")
    assert click.status_code == 302 and click.headers["Location"].startswith(f"{ORIGIN}/sale")
    assert "utm_campaign=campaign" in click.headers["Location"]
    clock.advance(minutes=20)
    _order(client, new, clock, "evt-1", "1001", "visitor-de", "59.00")
    stats = client.get(f"/v1/admin/campaigns/{cid}/stats", headers=admin).json
    assert (stats["targeted"], stats["sent"], stats["clicks"], stats["ctr"], stats["orders"], stats["gmv"]) == (
        1, 1, 1, 1.0, 1, "59.00")
    dispatch(app, clock.now())  # every row final: the campaign is sent
    assert client.get(f"/v1/admin/campaigns/{cid}", headers=admin).json["status"] == "sent"
    session.expire_all()
    assert session.get(Campaign, cid).status == "sent"


def test_a_deleted_campaigns_id_is_never_given_to_a_new_one(client, session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now())
    session.commit()
    first = client.post("/v1/admin/campaigns", headers=auth(new), json={"name": "A", "title": "A"}).json["id"]
    client.post(f"/v1/admin/campaigns/{first}/send", headers=auth(new), json={})
    from server.planning import campaigns as planner
    assert planner.sweep(session, clock.now()) == 1
    session.execute(sa.update(Push).values(status="sent", sent_at=clock.now()))
    planner.finish_sent(session, clock.now())
    session.commit()
    assert client.delete(f"/v1/admin/campaigns/{first}", headers=auth(new)).status_code == 204
    second = client.post("/v1/admin/campaigns", headers=auth(new), json={"name": "B", "title": "B"}).json["id"]
    assert second != first
    client.post(f"/v1/admin/campaigns/{second}/send", headers=auth(new), json={})
    assert planner.sweep(session, clock.now()) == 1  # its own row, not blocked by the old one's key
    session.commit()
    assert client.get(f"/v1/admin/campaigns/{second}/stats", headers=auth(new)).json["sent"] == 0


def _subscribe_at_the_push_service(app, client, new, web_push_testing, visitors):
    """Each visitor subscribed at web-push-testing through the collect API; their inboxes."""
    key = public_key_b64(get_vapid(app))
    inboxes = {}
    for visitor in visitors:
        service = web_push_testing.subscribe(key)
        inboxes[visitor] = service["clientHash"]
        response = client.post(f"/v1/shops/{new.shop.public_key}/subscriptions", headers={"Origin": ORIGIN}, json={
            "visitor_id": visitor, "subscription": {"endpoint": service["endpoint"], "expirationTime": None,
                                                    "keys": service["keys"]}})
        assert response.status_code == 201, response.json
    return inboxes


def test_a_fixed_campaign_coupon_is_in_the_preview_and_every_push(app, client, session, clock, web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    admin = auth(new)
    assert client.put("/v1/admin/events/welcome", headers=admin, json={"enabled": False}).status_code == 200
    assert client.put("/v1/admin/coupons/campaign", headers=admin,
                      json={"mode": "fixed", "code": "CAMP10"}).status_code == 200
    inboxes = _subscribe_at_the_push_service(app, client, new, web_push_testing, ["v-coupon-1", "v-coupon-2"])
    cid = client.post("/v1/admin/campaigns", headers=admin, json={
        "name": "Coupon", "title": "Code {{ coupon }}", "body": "Use {{ coupon }} at checkout"}).json["id"]
    preview = client.post(f"/v1/admin/campaigns/{cid}/preview", headers=admin).json
    assert (preview["sample"]["title"], preview["sample"]["body"]) == ("Code CAMP10", "Use CAMP10 at checkout")
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=admin, json={"mode": "now"}).status_code == 202
    assert dispatch(app, clock.now())["sent"] == 2
    for inbox in inboxes.values():
        [message] = web_push_testing.notifications(inbox)
        assert (message["title"], message["body"]) == ("Code CAMP10", "Use CAMP10 at checkout")


def test_list_codes_go_one_per_campaign_push_until_the_list_runs_out(app, client, session, clock,
                                                                      web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    admin = auth(new)
    assert client.put("/v1/admin/events/welcome", headers=admin, json={"enabled": False}).status_code == 200
    assert client.put("/v1/admin/coupons/campaign", headers=admin, json={"mode": "list"}).status_code == 200
    upload = client.post("/v1/admin/coupons/campaign/codes", headers={**admin, "Content-Type": "text/plain"},
                         data="ONE-1\nTWO-2\n")
    assert upload.status_code == 201, upload.json
    inboxes = _subscribe_at_the_push_service(app, client, new, web_push_testing, ["v-list-1", "v-list-2", "v-list-3"])
    cid = client.post("/v1/admin/campaigns", headers=admin, json={
        "name": "Codes", "title": "{% if coupon %}Code {{ coupon }}{% else %}Sale{% endif %}"}).json["id"]
    # The preview takes no code: it shows a sample one.
    assert client.post(f"/v1/admin/campaigns/{cid}/preview", headers=admin).json["sample"]["title"] == \
        "Code TEST-COUPON"
    assert client.get("/v1/admin/coupons/campaign", headers=admin).json["remaining"] == 2
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=admin, json={"mode": "now"}).status_code == 202
    assert dispatch(app, clock.now())["sent"] == 3
    titles = sorted(m["title"] for inbox in inboxes.values() for m in web_push_testing.notifications(inbox))
    assert titles == ["Code ONE-1", "Code TWO-2", "Sale"]
    coupon = client.get("/v1/admin/coupons/campaign", headers=admin).json
    assert (coupon["remaining"], coupon["assigned"]) == (0, 2)
    session.expire_all()
    rows = session.execute(sa.select(CouponCode.code, Push.title, Push.subscription_id, CouponCode.subscription_id)
                           .join(Push, Push.id == CouponCode.push_id).order_by(CouponCode.code)).all()
    assert [(code, title) for code, title, _, _ in rows] == [("ONE-1", "Code ONE-1"), ("TWO-2", "Code TWO-2")]
    assert all(push_sub == code_sub for _, _, push_sub, code_sub in rows)
