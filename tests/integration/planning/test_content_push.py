"""Action buttons end to end: planned with their own targets, sent through ``web-push-testing``,
each with its own click link; a click on button 2 is recorded as such, opens its page, and an
order after it is credited to the push's kind. And the payload cap drops buttons before words."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from server.core.models import Click, Order, Shop
from server.core.tokens import read_click_token
from server.delivery.payload import action_links, build_payload
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.planning import welcome
from server.webhooks.native import sign
from tests.factories import make_shop, make_subscription, make_visitor


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def test_action_buttons_have_their_own_click_links_and_attribution(app, client, session, clock, dispatcher,
                                                                  web_push_testing):
    new = make_shop(session, clock.now())
    session.commit()
    headers = {"Authorization": f"Bearer {new.admin_token}"}
    saved = client.put("/v1/admin/events/welcome", headers=headers, json={
        "url": "https://shop.example/new",
        "actions": [{"title": "Shop {{ shop_name }}", "url": "https://shop.example/sale"},
                    {"title": "Use {{ coupon }}", "url": "https://shop.example/cart?code={{ coupon }}"}]})
    assert saved.status_code == 200, saved.get_json()
    client.put("/v1/admin/coupons/welcome", headers=headers, json={"mode": "fixed", "code": "HELLO5"})
    data = web_push_testing.subscribe(public_key_b64(get_vapid(app)))
    visitor = make_visitor(session, new.shop.id, clock.now(), visitor_key="visitor-actions-1")
    sub = make_subscription(session, visitor, clock.now(), endpoint=data["endpoint"], keys=data["keys"])
    assert welcome.plan(session, session.get(Shop, new.shop.id), visitor, sub, clock.now()) == 1
    session.commit()

    assert dispatcher.run_pass().sent == 1

    [message] = web_push_testing.notifications(data["clientHash"])
    push_id = message["push_id"]
    click = message["url"]
    assert read_click_token("test-secret-key", click.removeprefix("http://pushcart.test/c/")) == push_id
    assert message["actions"] == [
        {"action": "a1", "title": "Shop Test Shop", "url": f"{click}?a=1"},
        {"action": "a2", "title": "Use HELLO5", "url": f"{click}?a=2"},
    ]

    clock.advance(minutes=5)
    response = client.get(message["actions"][1]["url"].removeprefix("http://pushcart.test"))
    assert response.status_code == 302
    assert response.headers["Location"] == ("https://shop.example/cart?code=HELLO5&utm_source=pushcart"
                                            "&utm_medium=web_push&utm_campaign=welcome")
    plain = client.get(click.removeprefix("http://pushcart.test"))
    assert plain.headers["Location"].startswith("https://shop.example/new?")
    session.expire_all()
    assert [(c.push_id, c.action) for c in session.scalars(sa.select(Click).order_by(Click.id))] == [
        (push_id, 2), (push_id, None)]

    clock.advance(hours=1)
    body = json.dumps({"id": "wh-a1", "order_id": "A-1", "status": "paid", "visitor_id": "visitor-actions-1",
                       "total": "30.00", "currency": "USD"}).encode()
    answer = client.post(f"/v1/webhooks/{new.shop.public_key}/orders", data=body, headers={
        "Content-Type": "application/json", "X-Pushcart-Signature": sign(new.secret, int(clock.now().timestamp()), body)})
    assert answer.status_code in (200, 201, 202)
    session.expire_all()
    order = session.scalars(sa.select(Order)).one()
    assert (order.attributed_push_id, order.attributed_kind) == (push_id, "welcome")
    day = clock.now().date().isoformat()
    stats = client.get(f"/v1/admin/stats?from={day}&to={day}", headers=headers).get_json()
    assert stats["by_kind"]["welcome"]["actions"] == {"a1": 0, "a2": 1}
    assert stats["by_kind"]["welcome"]["clicks"] == 2 and stats["by_kind"]["welcome"]["orders"] == 1


def test_a_click_link_naming_a_button_the_push_lacks_counts_as_a_plain_click(app, client, session, clock):
    from server.core.tokens import make_click_token
    from tests.factories import make_push
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    push = make_push(session, make_subscription(session, visitor, clock.now()), clock.now(),
                     url="https://shop.example/p", actions=[{"title": "One", "url": "https://shop.example/one"}])
    session.commit()
    token = make_click_token(app.config["SECRET_KEY"], push.id)
    for query, target in (("?a=2", "https://shop.example/p?"), ("?a=evil", "https://shop.example/p?"),
                          ("?a=1", "https://shop.example/one?")):
        assert client.get(f"/c/{token}{query}").headers["Location"].startswith(target)
    session.expire_all()
    assert [c.action for c in session.scalars(sa.select(Click).order_by(Click.id))] == [None, None, 1]


def test_the_payload_cap_drops_the_buttons_before_cutting_the_texts():
    actions = action_links("https://p.example/c/1.abc", [{"title": "B" * 100, "url": "x"}] * 2)
    small = json.loads(build_payload(push_id=1, kind="welcome", title="T", body="short", url="https://p.example/c/1",
                                     actions=actions))
    assert [a["action"] for a in small["actions"]] == ["a1", "a2"]
    body = "é" * 480  # 960 bytes: fits alone, not with the buttons, under a 1,300-byte cap
    capped = json.loads(build_payload(push_id=1, kind="welcome", title="T", body=body, url="https://p.example/c/1",
                                      actions=actions, limit=1300))
    assert "actions" not in capped and capped["body"] == body
    tiny = build_payload(push_id=1, kind="welcome", title="T", body=body, url="https://p.example/c/1",
                         actions=actions, limit=600)
    assert len(tiny) <= 600 and "actions" not in json.loads(tiny)
