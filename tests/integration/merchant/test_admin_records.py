"""The merchant API's push and visitor records and preset events (CONTRACT section 8)."""
from __future__ import annotations

from datetime import timedelta

from server.core.models import Push, PushStatus
from tests.dashboard_seed import make_click, make_event, make_order, make_push
from tests.factories import make_shop, make_subscription, make_visitor

XSS = "<img src=x onerror=alert(1)>"


def _get(client, token, path):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_push_records_show_what_was_sent_to_whom(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now(), visitor_key="v-alex")
    sub = make_subscription(session, visitor, clock.now())
    sent = make_push(session, visitor, "shipped", clock.now(), subscription_id=sub.id, title="Shipped!",
                     body="On its way", icon="javascript:alert(1)", image="https://cdn.example/i.png")
    make_click(session, sent, clock.now() + timedelta(minutes=3))
    make_click(session, sent, clock.now() + timedelta(minutes=4))
    make_push(session, visitor, "welcome", clock.now() - timedelta(hours=1), status="failed", http_status=400,
              error="bad request")
    session.commit()
    page = _get(client, new.admin_token, "/v1/admin/pushes").get_json()
    assert (page["total"], page["page"], page["pages"], page["has_more"]) == (2, 1, 1, False)
    first, second = page["items"]
    assert first["id"] == sent.id and first["visitor"] == "v-alex" and first["subscription_id"] == sub.id
    assert (first["kind"], first["title"], first["body"], first["status"]) == ("shipped", "Shipped!", "On its way", "sent")
    assert (first["http_status"], first["clicked"], first["clicks"]) == (201, True, 2)
    assert first["icon"] is None, "a non-http(s) URL is never offered as a link"
    assert first["image"] == "https://cdn.example/i.png"
    assert (second["status"], second["http_status"], second["error"], second["clicked"]) == ("failed", 400, "bad request", False)


def test_push_records_number_checkout_steps_from_one_and_single_pushes_have_none(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    make_push(session, visitor, "checkout_recovery", clock.now() - timedelta(hours=2), step=1)
    make_push(session, visitor, "checkout_recovery", clock.now() - timedelta(hours=1), step=2)
    make_push(session, visitor, "shipped", clock.now())
    session.commit()
    items = _get(client, new.admin_token, "/v1/admin/pushes").get_json()["items"]
    assert [(p["kind"], p["step"]) for p in items] == [("shipped", None), ("checkout_recovery", 2),
                                                       ("checkout_recovery", 1)]


def test_push_records_filter_by_kind_and_status_and_paginate(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    for i in range(55):
        make_push(session, visitor, "welcome" if i % 2 else "shipped", clock.now() - timedelta(minutes=i),
                  status=PushStatus.SENT.value if i % 5 else PushStatus.CANCELLED.value)
    session.commit()
    token = new.admin_token
    one = _get(client, token, "/v1/admin/pushes").get_json()
    two = _get(client, token, "/v1/admin/pushes?page=2").get_json()
    assert (len(one["items"]), len(two["items"]), one["total"], one["has_more"], two["has_more"]) == (50, 5, 55, True, False)
    assert not {p["id"] for p in one["items"]} & {p["id"] for p in two["items"]}
    times = [p["time"] for p in one["items"] + two["items"]]
    assert times == sorted(times, reverse=True)
    welcome = _get(client, token, "/v1/admin/pushes?kind=welcome").get_json()
    assert welcome["total"] == 27 and {p["kind"] for p in welcome["items"]} == {"welcome"}
    cancelled = _get(client, token, "/v1/admin/pushes?kind=shipped&status=cancelled").get_json()
    assert cancelled["total"] == sum(1 for i in range(55) if i % 2 == 0 and i % 5 == 0)
    for bad in ("kind=spam", "status=lost", "page=0", "page=x"):
        response = _get(client, token, f"/v1/admin/pushes?{bad}")
        assert response.status_code == 422, bad


def test_visitor_records_show_source_products_carts_pushes_and_orders(client, session, clock):
    new = make_shop(session, clock.now())
    now = clock.now()
    visitor = make_visitor(session, new.shop.id, now, visitor_key="v-1", referrer="javascript:alert(1)",
                           utm_source="newsletter", utm_campaign="spring")
    make_subscription(session, visitor, now)
    make_event(session, visitor, "product_view", now, product={"id": "p1", "title": XSS, "url": "https://shop.example/p1"})
    make_event(session, visitor, "product_view", now + timedelta(seconds=1), product={"id": "p2", "title": "Socks",
                                                                                     "url": "data:text/html,x"})
    make_event(session, visitor, "add_to_cart", now)
    push = make_push(session, visitor, "browse_abandonment", now)
    make_click(session, push, now)
    make_push(session, visitor, "welcome", now, status="pending", sent_at=None)
    make_order(session, visitor, new.shop.id, "12.30", now)
    quiet = make_visitor(session, new.shop.id, now - timedelta(days=1), visitor_key="v-2",
                         referrer="https://search.example/?q=shirt")
    session.commit()
    page = _get(client, new.admin_token, "/v1/admin/visitors").get_json()
    assert [v["id"] for v in page["items"]] == ["v-1", "v-2"]
    v1, v2 = page["items"]
    assert v1["subscribed"] is True and v2["subscribed"] is False
    assert v1["source"]["utm_source"] == "newsletter" and v1["source"]["referrer_link"] is None
    assert v2["source"]["referrer_link"] == "https://search.example/?q=shirt"
    assert v1["products_viewed"] == 2 and v1["carted"] is True and v1["add_to_carts"] == 1
    assert v1["recent_products"] == [{"title": "Socks", "url": None},
                                     {"title": XSS, "url": "https://shop.example/p1"}]
    assert (v1["pushes_received"], v1["pushes_clicked"], v1["orders"], v1["spent"]) == (1, 1, 1, "12.30")
    assert (v2["products_viewed"], v2["carted"], v2["orders"], v2["spent"]) == (0, False, 0, "0.00")
    subscribed = _get(client, new.admin_token, "/v1/admin/visitors?subscribed=1").get_json()
    assert [v["id"] for v in subscribed["items"]] == ["v-1"]
    assert quiet.visitor_key == _get(client, new.admin_token, "/v1/admin/visitors?subscribed=0").get_json()["items"][0]["id"]


def test_events_list_and_change(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    pending = make_push(session, visitor, "repurchase", clock.now(), status="pending", sent_at=None)
    session.commit()
    headers = {"Authorization": f"Bearer {new.admin_token}"}
    events = client.get("/v1/admin/events", headers=headers).get_json()
    assert [e["kind"] for e in events] == ["welcome", "browse_abandonment", "checkout_recovery", "repurchase", "shipped",
                                          "back_in_stock", "price_drop"]
    assert set(events[0]) == {"kind", "enabled", "delays", "title", "body", "icon", "image", "url",
                              "actions", "locales"}
    assert events[2]["kind"] == "checkout_recovery" and events[2]["steps"] == []
    steps = [{"title": "", "body": ""}, {"title": "Step two, {{ first_name }}", "body": "Only {{ cart_total }}"}]
    put = client.put("/v1/admin/events/checkout_recovery", headers=headers,
                     json={**events[2], "delays": [3600, 86400], "steps": steps})
    assert put.status_code == 200 and put.get_json()["steps"] == steps
    got = {e["kind"]: e for e in client.get("/v1/admin/events", headers=headers).get_json()}
    assert got["checkout_recovery"]["steps"] == steps
    refused = client.put("/v1/admin/events/checkout_recovery", headers=headers,
                         json={"steps": [{}, {"title": "{% for %}"}]})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "invalid_template"
    assert "steps.1.title" in refused.get_json()["error"]["message"]
    changed = client.put("/v1/admin/events/repurchase", headers=headers,
                         json={"enabled": False, "delays": [3 * 86400], "title": "Refill, {{ first_name }}?"})
    assert changed.status_code == 200
    assert changed.get_json()["enabled"] is False and changed.get_json()["delays"] == [3 * 86400]
    again = {e["kind"]: e for e in client.get("/v1/admin/events", headers=headers).get_json()}
    assert again["repurchase"]["title"] == "Refill, {{ first_name }}?"
    session.expire_all()
    assert session.get(Push, pending.id).status == "cancelled", "disabling a kind cancels its pending pushes"
    bad = client.put("/v1/admin/events/repurchase", headers=headers, json={"title": "{% for %}"})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_template"
    assert client.put("/v1/admin/events/spam", headers=headers, json={}).status_code == 404
    assert client.put("/v1/admin/events/welcome", json={"enabled": False}).status_code == 401


def test_push_records_walk_on_by_cursor_with_their_filters(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    for i in range(110):
        # Pairs share a time: the cursor must tell them apart by id.
        make_push(session, visitor, "welcome" if i % 2 else "shipped", clock.now() - timedelta(minutes=i // 2))
    session.commit()
    token = new.admin_token
    one = _get(client, token, "/v1/admin/pushes?kind=welcome").get_json()
    assert one["next"] and len(one["items"]) == 50
    two = _get(client, token, f"/v1/admin/pushes?kind=welcome&cursor={one['next']}").get_json()
    assert [p["id"] for p in two["items"]] == \
        [p["id"] for p in _get(client, token, "/v1/admin/pushes?kind=welcome&page=2").get_json()["items"]]
    assert len(two["items"]) == 5 and two["next"] is None and two["has_more"] is False
    assert {p["kind"] for p in one["items"] + two["items"]} == {"welcome"}
    times = [(p["time"], p["id"]) for p in one["items"] + two["items"]]
    assert times == sorted(times, reverse=True)
    for bad in ("x", "12", "-1-2", "1-2-3", "9" * 30 + "-1"):
        assert _get(client, token, f"/v1/admin/pushes?cursor={bad}").status_code == 422, bad


def test_visitor_records_walk_on_by_cursor_newest_first(client, session, clock):
    new = make_shop(session, clock.now())
    now = clock.now()
    keys = []
    for i in range(60):
        visitor = make_visitor(session, new.shop.id, now - timedelta(hours=i // 3), visitor_key=f"v-{i:02d}")
        if i % 2:
            make_subscription(session, visitor, now)
        keys.append(visitor.visitor_key)
    session.commit()
    token = new.admin_token
    one = _get(client, token, "/v1/admin/visitors").get_json()
    two = _get(client, token, f"/v1/admin/visitors?cursor={one['next']}").get_json()
    walked = [v["id"] for v in one["items"] + two["items"]]
    assert sorted(walked) == sorted(keys) and len(set(walked)) == 60 and two["next"] is None
    assert [v["first_seen"] for v in one["items"] + two["items"]] == \
        sorted((v["first_seen"] for v in one["items"] + two["items"]), reverse=True)
    subscribed = _get(client, token, "/v1/admin/visitors?subscribed=1").get_json()
    assert subscribed["next"] is None and len(subscribed["items"]) == 30
    assert _get(client, token, "/v1/admin/visitors?cursor=nope").status_code == 422


def test_record_totals_are_counted_up_to_a_cap(client, session, clock, monkeypatch):
    from server.reports import records

    monkeypatch.setattr(records, "COUNT_CAP", 20)
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    for i in range(55):
        make_push(session, visitor, "welcome", clock.now() - timedelta(minutes=i))
    session.commit()
    page = _get(client, new.admin_token, "/v1/admin/pushes").get_json()
    assert (page["total"], page["total_capped"], page["has_more"], len(page["items"])) == (20, True, True, 50)
    few = _get(client, new.admin_token, "/v1/admin/pushes?status=failed").get_json()
    assert (few["total"], few["total_capped"], few["has_more"]) == (0, False, False)
