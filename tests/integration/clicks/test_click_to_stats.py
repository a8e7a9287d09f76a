"""End to end across the seams: a click on a push, a signed order webhook, the merchant's stats."""
from __future__ import annotations

import json
from datetime import timedelta

from server.webhooks.native import sign
from server.core.tokens import make_click_token
from tests.dashboard_seed import make_push
from tests.factories import make_shop, make_subscription, make_visitor


def _order(client, new, clock, webhook_id, order_id, visitor_key, total):
    body = json.dumps({"id": webhook_id, "order_id": order_id, "status": "paid", "visitor_id": visitor_key,
                       "total": total, "currency": "USD"}).encode()
    signature = sign(new.secret, int(clock.now().timestamp()), body)
    response = client.post(f"/v1/webhooks/{new.shop.public_key}/orders", data=body,
                           headers={"Content-Type": "application/json", "X-Pushcart-Signature": signature})
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)


def test_an_order_after_a_click_is_credited_to_the_push_kind_within_the_window(app, client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now(), visitor_key="visitor-clicks-1")
    make_subscription(session, visitor, clock.now())
    push = make_push(session, visitor, "checkout_recovery", clock.now(), url="https://shop.example/checkout/1")
    late = make_visitor(session, new.shop.id, clock.now(), visitor_key="visitor-clicks-2")
    late_push = make_push(session, late, "browse_abandonment", clock.now())
    session.commit()
    day = clock.now().date().isoformat()

    clock.advance(minutes=10)
    assert client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], push.id)}").status_code == 302
    assert client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], late_push.id)}").status_code == 302
    clock.advance(hours=1)
    _order(client, new, clock, "wh-1", "1001", "visitor-clicks-1", "49.90")
    clock.advance(hours=72)  # the second visitor pays after the 72 h window
    _order(client, new, clock, "wh-2", "1002", "visitor-clicks-2", "10.00")

    last_day = clock.now().date().isoformat()
    stats = client.get(f"/v1/admin/stats?from={day}&to={last_day}",
                       headers={"Authorization": f"Bearer {new.admin_token}"}).get_json()
    assert (stats["orders"], stats["gmv"], stats["all_orders"], stats["all_gmv"]) == (1, "49.90", 2, "59.90")
    assert stats["by_kind"]["checkout_recovery"] == {"sent": 1, "clicks": 1, "unique_clicks": 1, "ctr": 1.0,
                                                     "orders": 1, "gmv": "49.90"}
    assert stats["by_kind"]["browse_abandonment"]["orders"] == 0
    assert stats["daily"][0]["orders"] == 1 and stats["daily"][0]["gmv"] == "49.90"
    assert timedelta(hours=73) < clock.now() - push.sent_at
