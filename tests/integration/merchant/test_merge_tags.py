"""Merge tags with fallbacks in campaigns: the preview samples the real audience and warns of empty
variables; a fallback reaches an anonymous subscriber in the payload a real push service decrypts."""
from __future__ import annotations

import re

import pytest

from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_campaigns_api import ORIGIN, auth, shop_without_welcome
from tests.integration.merchant.test_dashboard import log_in
from tests.integration.planning.test_presets_e2e import dispatch


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def audience(session, clock, shop_id, names):
    """One subscriber per name (``None``: anonymous)."""
    for name in names:
        make_subscription(session, make_visitor(session, shop_id, clock.now(), first_name=name), clock.now())
    session.commit()


def test_the_preview_warns_when_a_variable_is_empty_for_part_of_the_sampled_audience(client, session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    audience(session, clock, new.shop.id, ["Jonas"] * 6 + [None] * 14 + ["Mia"] * 5)
    cid = client.post("/v1/admin/campaigns", headers=auth(new), json={"name": "A", "title": "Hi {{ first_name }}"}).json["id"]
    preview = client.post(f"/v1/admin/campaigns/{cid}/preview", headers=auth(new)).json
    assert preview["audience"] == 25 and preview["sampled"] == 20
    assert preview["warnings"] == [{"field": "title", "variable": "first_name", "empty": 14, "sampled": 20,
                                    "message": "first_name is empty for 14 of 20 sampled subscribers: set a fallback"}]
    assert {(s["title"], s["count"]) for s in preview["samples"]} == {("Hi Jonas", 6), ("Hi", 14)}
    fixed = client.post(f"/v1/admin/campaigns/{cid}/preview", headers=auth(new),
                        json={"name": "A", "title": 'Hi {{ first_name | default("there") }}'}).json
    assert fixed["warnings"] == []
    assert {(s["title"], s["count"]) for s in fixed["samples"]} == {("Hi Jonas", 6), ("Hi there", 14)}


def test_the_dashboard_preview_shows_the_warning_and_the_sampled_variants(client, session, clock):
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    audience(session, clock, new.shop.id, ["Jonas", None, None])
    csrf = log_in(client, new.admin_token)
    form = {"csrf_token": csrf, "name": "A", "title": "Hi {{ first_name }}", "body": "", "url": "", "icon": "", "image": ""}
    created = client.post("/admin/campaigns/new", data=form)
    cid = int(created.headers["Location"].rsplit("/", 1)[1])
    page = client.post(f"/admin/campaigns/{cid}/preview", data=form).get_data(as_text=True)
    warning = re.search(r'<p[^>]*class="[^"]*merge-warning[^"]*"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "first_name is empty for 2 of 3 sampled subscribers: set a fallback" in warning
    assert page.count('class="notif"') == 2, "one notification per distinct rendering"
    # The insert-variable menu offers the variables a campaign can use, with a fallback box.
    assert 'id="merge-tags"' in page and 'value="first_name"' in page


def test_a_fallback_reaches_an_anonymous_subscriber_through_a_real_push_service(app, client, session, clock,
                                                                                web_push_testing):
    new, admin, key = shop_without_welcome(app, client, session, clock)
    inboxes = {}
    for visitor in ("visitor-anonymous", "visitor-named"):
        service = web_push_testing.subscribe(key)
        inboxes[visitor] = service["clientHash"]
        response = client.post(f"/v1/shops/{new.shop.public_key}/subscriptions", headers={"Origin": ORIGIN}, json={
            "visitor_id": visitor, "subscription": {"endpoint": service["endpoint"], "expirationTime": None,
                                                    "keys": service["keys"]}})
        assert response.status_code == 201, response.json
    client.post(f"/v1/shops/{new.shop.public_key}/events", headers={"Origin": ORIGIN}, json={
        "visitor_id": "visitor-named", "events": [{"type": "identify", "first_name": "Jonas"}]})
    created = client.post("/v1/admin/campaigns", headers=admin, json={
        "name": "Hello", "title": 'Hi {{ first_name | default("there") }}', "body": "New at {{ shop_name }}",
        "url": f"{ORIGIN}/new"})
    cid = created.json["id"]
    assert client.post(f"/v1/admin/campaigns/{cid}/send", headers=admin, json={"mode": "now"}).status_code == 202
    assert dispatch(app, clock.now())["sent"] == 2
    [anonymous] = web_push_testing.notifications(inboxes["visitor-anonymous"])
    [named] = web_push_testing.notifications(inboxes["visitor-named"])
    assert (anonymous["title"], anonymous["body"]) == ("Hi there", "New at Linen & Co")
    assert named["title"] == "Hi Jonas"
