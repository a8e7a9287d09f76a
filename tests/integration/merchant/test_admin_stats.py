"""The merchant API's stats (CONTRACT section 8), checked figure by figure against a hand count.

The scenario (visitors v1..v6 of shop A, one push of shop B) is ``seed_stats_scenario`` in
``tests/dashboard_seed.py``; the comments in ``EXPECTED_A`` say which rows make each figure.
"""
from __future__ import annotations

import pytest

from tests.dashboard_seed import D3, seed_stats_scenario as seed
from tests.integration.merchant.test_dashboard import log_in


def _get(client, token, path):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


EXPECTED_A = {
    "from": "2026-01-05", "to": "2026-01-07", "currency": "USD",
    "subscribers": 3,          # s1, s2 and s6 (ended after the range); s4 ended inside, s5 began after
    "new_subscribers": 2,      # s2 (Jan 6), s6 (Jan 5)
    "pushes_sent": 5,          # v1 browse x2 + checkout, v2 welcome, v4 shipped (not v1's Jan 4, not v2's Jan 8)
    "pushes_failed": 2,        # v2 failed, v6 expired (410)
    "clicks": 4,               # browse 2 (one repeat), checkout 1, shipped 1
    "unique_clicks": 3,
    "ctr": 0.6,                # 3 clicked pushes / 5 sent
    "orders": 3,               # o1, o2 (checkout click), o5 (shipped click)
    "gmv": "150.15",           # 100.10 + 20.05 + 30.00
    "all_orders": 5,           # o1..o5; o6 is after the range
    "all_gmv": "215.14",       # 100.10 + 20.05 + 55.00 + 9.99 + 30.00
    "by_kind": {
        "welcome": {"sent": 1, "clicks": 0, "unique_clicks": 0, "ctr": 0.0, "orders": 0, "gmv": "0.00"},
        "browse_abandonment": {"sent": 2, "clicks": 2, "unique_clicks": 1, "ctr": 0.5, "orders": 0, "gmv": "0.00"},
        "checkout_recovery": {"sent": 1, "clicks": 1, "unique_clicks": 1, "ctr": 1.0, "orders": 2, "gmv": "120.15"},
        "repurchase": {"sent": 0, "clicks": 0, "unique_clicks": 0, "ctr": 0.0, "orders": 0, "gmv": "0.00"},
        "shipped": {"sent": 1, "clicks": 1, "unique_clicks": 1, "ctr": 1.0, "orders": 1, "gmv": "30.00"},
        "back_in_stock": {"sent": 0, "clicks": 0, "unique_clicks": 0, "ctr": 0.0, "orders": 0, "gmv": "0.00"},
        "price_drop": {"sent": 0, "clicks": 0, "unique_clicks": 0, "ctr": 0.0, "orders": 0, "gmv": "0.00"},
        "campaign": {"sent": 0, "clicks": 0, "unique_clicks": 0, "ctr": 0.0, "orders": 0, "gmv": "0.00"},
    },
    # Each step counts the visitors who reached it or a later one (nested, nobody dropped).
    # Seen: v1, v2, v3, v5, v6 and v4 (paid in the range). Subscribed by the end: v1, v2, v4, v6;
    # subscribers = those + the shoppers (v3). Shoppers: v1 (cart), v2 (checkout) and every
    # buyer. Buyers: v1, v2, v3, v4. Repeat: v1.
    "funnel": {"visitors": 6, "subscribers": 5, "shoppers": 4, "buyers": 4, "repeat_buyers": 1},
    "daily": [
        {"date": "2026-01-05", "sent": 2, "clicks": 3, "orders": 1, "gmv": "30.00"},
        {"date": "2026-01-06", "sent": 2, "clicks": 1, "orders": 1, "gmv": "100.10"},
        {"date": "2026-01-07", "sent": 1, "clicks": 0, "orders": 1, "gmv": "20.05"},
    ],
}


def test_stats_match_a_hand_count_of_the_seeded_scenario(client, session):
    a, _ = seed(session)
    response = _get(client, a.admin_token, "/v1/admin/stats?from=2026-01-05&to=2026-01-07")
    assert response.status_code == 200
    figures = response.get_json()
    # The guardrails look at the last 7 days before now (test_alerts_guardrails hand-counts them).
    assert figures.pop("guardrails")["warnings"] == []
    assert figures == EXPECTED_A


def test_another_shops_token_sees_none_of_it(client, session):
    a, b = seed(session)
    stats = _get(client, b.admin_token, "/v1/admin/stats?from=2026-01-05&to=2026-01-07").get_json()
    assert (stats["pushes_sent"], stats["clicks"], stats["orders"], stats["gmv"]) == (1, 1, 1, "500.00")
    assert stats["all_gmv"] == "500.00" and stats["subscribers"] == 1
    # w subscribed and paid without a cart the widget saw: paying makes a shopper and a buyer.
    assert stats["funnel"] == {"visitors": 1, "subscribers": 1, "shoppers": 1, "buyers": 1, "repeat_buyers": 0}
    pushes = _get(client, b.admin_token, "/v1/admin/pushes").get_json()
    assert [p["title"] for p in pushes["items"]] == ["Shop B only"]
    assert _get(client, b.admin_token, "/v1/admin/visitors").get_json()["total"] == 1
    a_pushes = _get(client, a.admin_token, "/v1/admin/pushes?page=1").get_json()
    assert "Shop B only" not in {p["title"] for p in a_pushes["items"]}


def test_a_day_outside_any_activity_is_all_zero(client, session):
    a, _ = seed(session)
    stats = _get(client, a.admin_token, "/v1/admin/stats?from=2025-12-01&to=2025-12-02").get_json()
    assert stats["pushes_sent"] == 0 and stats["ctr"] == 0.0 and stats["gmv"] == "0.00"
    assert [d["date"] for d in stats["daily"]] == ["2025-12-01", "2025-12-02"]


@pytest.mark.parametrize("query", ["from=2026-13-01&to=2026-01-02", "from=2026-01-05&to=2026-01-01",
                                   "from=2024-01-01&to=2026-01-01", "from=yesterday"])
def test_bad_ranges_get_422(client, session, query):
    a, _ = seed(session)
    response = _get(client, a.admin_token, f"/v1/admin/stats?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_field"


def test_stats_default_to_the_last_30_days(client, session, clock):
    a, _ = seed(session)
    clock.set(D3)
    stats = _get(client, a.admin_token, "/v1/admin/stats").get_json()
    assert (stats["from"], stats["to"]) == ("2025-12-09", "2026-01-07")
    assert len(stats["daily"]) == 30


def test_stats_need_a_valid_token(client, session):
    seed(session)
    assert client.get("/v1/admin/stats").status_code == 401
    response = _get(client, "adm_wrong", "/v1/admin/stats")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


EDGE_RANGES = ["from=9999-12-31&to=9999-12-31", "to=9999-12-31", "to=0001-01-01", "from=0001-01-01&to=0001-01-01",
               "from=9999-12-01&to=9999-12-31", "from=2026-1-5&to=2026-01-07", "from=20260105&to=2026-01-07"]


@pytest.mark.parametrize("query", EDGE_RANGES)
@pytest.mark.parametrize("path", ["/v1/admin/stats?", "/v1/admin/lift?kind=welcome&"])
def test_days_at_the_ends_of_the_calendar_get_422_not_500(client, session, path, query):
    a, _ = seed(session)
    response = _get(client, a.admin_token, path + query)
    assert response.status_code == 422, response.get_data(as_text=True)[:200]
    assert response.get_json()["error"]["code"] == "invalid_field"
    assert set(response.get_json()["error"]) == {"code", "message"}


@pytest.mark.parametrize("query", EDGE_RANGES)
@pytest.mark.parametrize("page", ["/admin/?", "/admin/lift?kind=welcome&"])
def test_dashboard_pages_say_what_is_wrong_with_such_a_range(client, session, page, query):
    a, _ = seed(session)
    log_in(client, a.admin_token)
    response = client.get(page + query)
    assert response.status_code == 200
    assert "from and to must be" in response.get_data(as_text=True)
