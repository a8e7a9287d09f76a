"""A merchant's first run: ``/`` leads to the dashboard; an empty Overview shows first steps that tick themselves."""
from __future__ import annotations

import re

import pytest

from server.core.models import PushStatus
from tests.dashboard_seed import make_click, make_event, make_push
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import _ShopOrigin, log_in, shop_origin  # noqa: F401 (a fixture)

pytestmark = pytest.mark.shop(name="Acme")

STEPS = ["tag", "worker", "subscriber", "push", "click"]


def ticked(page: str) -> dict[str, bool]:
    """Each first step's key and whether the page shows it done."""
    items = re.findall(r'<li class="step( step-done)?" data-step="(\w+)"', page)
    return {key: bool(done) for done, key in items}


def test_the_root_leads_to_the_dashboard(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")


def test_an_empty_overview_shows_five_first_steps_none_done(client, new_shop):
    log_in(client, new_shop.admin_token)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="first-steps"' in page
    assert ticked(page) == {key: False for key in STEPS}


def test_the_first_steps_tick_themselves_from_real_data(client, new_shop, session, clock):
    log_in(client, new_shop.admin_token)
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    make_event(session, visitor, "page_view", clock.now())
    session.commit()
    assert ticked(client.get("/admin/").get_data(as_text=True)) == {
        "tag": True, "worker": False, "subscriber": False, "push": False, "click": False}
    subscription = make_subscription(session, visitor, clock.now())
    push = make_push(session, visitor, "welcome", clock.now(), subscription_id=subscription.id,
                     status=PushStatus.SENT.value)
    session.commit()
    assert ticked(client.get("/admin/").get_data(as_text=True)) == {
        "tag": True, "worker": True, "subscriber": True, "push": True, "click": False}
    make_click(session, push, clock.now())
    session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="first-steps"' not in page, "all done: the checklist gives way to the figures"


def test_a_pending_push_is_not_a_first_push_sent(client, new_shop, session, clock):
    log_in(client, new_shop.admin_token)
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    make_push(session, visitor, "welcome", clock.now(), status=PushStatus.PENDING.value, sent_at=None)
    session.commit()
    assert ticked(client.get("/admin/").get_data(as_text=True))["push"] is False


def test_a_passing_install_check_ticks_worker_found(client, session, clock, shop_origin, monkeypatch):
    monkeypatch.setattr(_ShopOrigin, "requests", [])
    monkeypatch.setattr(_ShopOrigin, "status", 200)
    monkeypatch.setattr(_ShopOrigin, "body", b'importScripts("http://pushcart.test/sw.js");\n')
    monkeypatch.setattr(_ShopOrigin, "content_type", "text/javascript")
    new = make_shop(session, clock.now(), origins=[shop_origin])
    session.commit()
    csrf = log_in(client, new.admin_token)
    assert ticked(client.get("/admin/").get_data(as_text=True))["worker"] is False
    client.post("/admin/install/check", data={"csrf_token": csrf, "origin": shop_origin})
    assert ticked(client.get("/admin/").get_data(as_text=True))["worker"] is True
