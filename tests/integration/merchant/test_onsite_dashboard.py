"""The dashboard's On-site page through Flask's test client: the template button, the form (with its
errors named), activate and pause, the daily cap, the report, escaping, and the Overview's totals."""
from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from server.core.models import OnsiteMessage, Shop
from tests.factories import make_shop
from tests.integration.merchant.test_dashboard import log_in

pytestmark = pytest.mark.shop(name="Acme")

XSS = "<img src=x onerror=alert(1)>"


def form(csrf, **changes):
    data = {"csrf_token": csrf, "name": "Gift finder", "status": "active", "page": "product", "min_visits": "2",
            "visits_scope": "product", "min_dwell_seconds": "5", "once_per_days": "3", "subscribed": "no",
            "title": "Who is it for?", "text": "Tell us and we'll show the best picks.", "cta_label": "",
            "cta_url": "", "reply_label_0": "Me", "reply_tag_0": "self", "reply_label_1": "A gift",
            "reply_tag_1": "gift", "cart_min": "20.00", "items_max": "5", "exit_intent": "1"}
    data.update(changes)
    return data


def messages(session, shop_id):
    session.expire_all()
    return session.scalars(sa.select(OnsiteMessage).where(OnsiteMessage.shop_id == shop_id)
                           .order_by(OnsiteMessage.id)).all()


def test_the_template_button_adds_the_seed_cart_rule_paused(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/onsite").get_data(as_text=True)
    assert 'id="onsite-template"' in page and 'id="no-onsite"' in page
    response = client.post("/admin/onsite/template", data={"csrf_token": csrf})
    assert response.status_code == 302
    [message] = messages(session, new_shop.shop.id)
    assert response.headers["Location"].endswith(f"/admin/onsite/{message.id}")
    assert message.status == "paused"
    assert {k: message.rule[k] for k in ("page", "min_visits", "min_dwell_seconds")} == \
        {"page": "cart", "min_visits": 3, "min_dwell_seconds": 11}
    assert client.post(f"/admin/onsite/{message.id}/status", data={"csrf_token": csrf, "status": "active"}).status_code == 302
    assert messages(session, new_shop.shop.id)[0].status == "active"
    assert 'data-pause="%d"' % message.id in client.get("/admin/onsite").get_data(as_text=True)


def test_the_form_saves_a_message_and_names_a_bad_field(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    refused = client.post("/admin/onsite/new", data=form(csrf, cta_url="javascript:alert(1)"))
    assert refused.status_code == 422
    text = html.unescape(refused.get_data(as_text=True))
    assert "content.cta_url" in text and 'value="Gift finder"' in text, "the form keeps what was typed"
    assert messages(session, new_shop.shop.id) == []

    assert client.post("/admin/onsite/new", data=form(csrf)).status_code == 302
    [message] = messages(session, new_shop.shop.id)
    assert message.rule == {"page": "product", "path_prefix": None, "min_visits": 2, "visits_scope": "product",
                            "min_dwell_seconds": 5, "cart_min": "20.00", "cart_max": None, "items_min": None,
                            "items_max": 5, "subscribed": "no", "exit_intent": True, "once_per_days": 3}
    assert message.content["replies"] == [{"label": "Me", "tag": "self"}, {"label": "A gift", "tag": "gift"}]

    saved = client.post(f"/admin/onsite/{message.id}", data=form(csrf, title=XSS, exit_intent=""))
    assert saved.status_code == 302
    page = client.get(f"/admin/onsite/{message.id}").get_data(as_text=True)
    assert XSS not in page and html.escape(XSS, quote=True) in page
    assert messages(session, new_shop.shop.id)[0].rule["exit_intent"] is False
    assert 'id="onsite-report"' in page


def test_another_shops_message_is_not_found_and_the_daily_cap_is_bounded(client, new_shop, session, clock):
    other = make_shop(session, clock.now(), name="Other")
    session.commit()
    other_csrf = log_in(client, other.admin_token)
    assert client.post("/admin/onsite/new", data=form(other_csrf)).status_code == 302
    [theirs] = messages(session, other.shop.id)
    client.post("/admin/logout", data={"csrf_token": other_csrf})

    csrf = log_in(client, new_shop.admin_token)
    assert client.get(f"/admin/onsite/{theirs.id}").status_code == 404
    assert client.post(f"/admin/onsite/{theirs.id}", data=form(csrf, name="mine now")).status_code == 404
    assert client.post(f"/admin/onsite/{theirs.id}/delete", data={"csrf_token": csrf}).status_code == 404
    assert messages(session, other.shop.id)[0].name == "Gift finder"

    assert client.post("/admin/onsite/settings", data={"csrf_token": csrf, "daily_cap": "99"}).status_code == 302
    assert "from 0 to 20" in client.get("/admin/onsite").get_data(as_text=True)
    client.post("/admin/onsite/settings", data={"csrf_token": csrf, "daily_cap": "4"})
    session.expire_all()
    assert session.get(Shop, new_shop.shop.id).onsite_daily_cap == 4


def test_the_overview_shows_the_onsite_totals(client, new_shop):
    log_in(client, new_shop.admin_token)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="onsite-totals"' in page and 'data-onsite="impressions">0<' in page
