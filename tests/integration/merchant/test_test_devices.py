"""Test devices through a real push service: the dashboard stores a web-push-testing subscription
as a test device, and "Send a test to my devices" on a preset, a campaign and an experiment's
variant reaches it through the dispatcher as a decrypted payload of kind ``test`` that no
figure counts (issue 24)."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from server.core.embed import worker_source
from server.core.models import OnsiteMessage, Push, Subscription, TestDevice, Visitor
from server.merchant import campaign_admin as campaigns
from server.merchant import experiment_admin as experiments
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in
from tests.integration.planning.test_presets_e2e import dispatch


@pytest.fixture
def app_config(app_config):
    """web-push-testing listens on plain http at localhost."""
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


def _key_of(settings_page: str) -> str:
    return re.search(r'data-key="([A-Za-z0-9_-]+)"', settings_page).group(1)


def test_tests_of_a_preset_a_campaign_and_a_variant_reach_the_test_device(app, client, session, clock,
                                                                          web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co")
    subscriber = make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now(),
                                   endpoint="https://fcm.googleapis.com/fcm/send/real-subscriber")
    sale = campaigns.create_campaign(session, new.shop, campaigns.CampaignIn(
        name="Winter sale", title="Hi {{ first_name | default('there') }}", body="20% off at {{ shop_name }}",
        url="https://shop.example/sale"), clock.now())
    experiment = experiments.create_experiment(session, new.shop, {
        "kind": "welcome", "name": "Warmer welcome", "variants": [
            {"title": "Hello from {{ shop_name }}"}, {"title": "Welcome aboard, {{ first_name }}!"}]}, clock.now())
    session.commit()
    csrf = log_in(client, new.admin_token)
    key = _key_of(client.get("/admin/settings").get_data(as_text=True))
    device = web_push_testing.subscribe(key)

    added = client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json={
        "name": "Pixel 8", "application_server_key": key,
        "subscription": {"endpoint": device["endpoint"], "expirationTime": None, "keys": device["keys"]}})
    assert added.status_code == 201, added.get_json()
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "<strong>Pixel 8</strong>" in page
    assert "Pixel 8" not in client.get("/admin/visitors").get_data(as_text=True)
    again = client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json={
        "name": "Pixel 8 (work)", "subscription": {"endpoint": device["endpoint"], "keys": device["keys"]}})
    assert again.status_code == 201 and session.scalar(sa.select(sa.func.count()).select_from(TestDevice)) == 1

    for path in ("/admin/test-devices/send/preset/welcome", f"/admin/test-devices/send/campaign/{sale.id}",
                 f"/admin/test-devices/send/experiment/{experiment['id']}/B"):
        assert client.post(path, data={"csrf_token": csrf}).status_code == 302, path
    assert dispatch(app, clock.now())["sent"] == 3
    messages = web_push_testing.notifications(device["clientHash"])
    assert [m["kind"] for m in messages] == ["test"] * 3
    titles = sorted(m["title"] for m in messages)
    assert titles == sorted(["Welcome to Linen & Co!", "Hi Alex", "Welcome aboard, Alex!"]), titles
    assert any(m["body"] == "20% off at Linen & Co" for m in messages)
    assert all(m["url"].startswith(app.config["PUBLIC_URL"] + "/c/") for m in messages)

    session.expire_all()
    pushes = session.scalars(sa.select(Push)).all()
    assert {p.subscription_id for p in pushes} == {session.scalars(sa.select(TestDevice.subscription_id)).one()}
    assert subscriber.id not in {p.subscription_id for p in pushes}, "a subscriber gets no test"
    stats = client.get("/v1/admin/stats", headers={"Authorization": f"Bearer {new.admin_token}"}).get_json()
    assert (stats["pushes_sent"], stats["subscribers"], stats["new_subscribers"]) == (0, 1, 1)
    assert stats["funnel"]["visitors"] == 1, "the device's own visitor is no visitor of the shop"
    audience = client.post(f"/v1/admin/campaigns/{sale.id}/preview", json={},
                           headers={"Authorization": f"Bearer {new.admin_token}"}).get_json()["audience"]
    assert audience == 1, "a test device is in no campaign's audience"

    device_id = session.scalars(sa.select(TestDevice.id)).one()
    assert client.post(f"/admin/test-devices/{device_id}/remove", data={"csrf_token": csrf}).status_code == 302
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(TestDevice)) == 0
    assert session.scalars(sa.select(Subscription.id)).all() == [subscriber.id]
    assert session.scalar(sa.select(sa.func.count()).select_from(Visitor)) == 1
    client.post("/admin/test-devices/send/preset/welcome", data={"csrf_token": csrf})
    assert "no test device to send to" in client.get("/admin/events").get_data(as_text=True)


def test_a_device_the_push_service_forgot_is_listed_as_unreachable_until_subscribed_again(
        app, client, session, clock, web_push_testing):
    new = make_shop(session, clock.now())
    session.commit()
    csrf = log_in(client, new.admin_token)
    key = _key_of(client.get("/admin/settings").get_data(as_text=True))
    device = web_push_testing.subscribe(key)
    body = {"name": "Old phone", "subscription": {"endpoint": device["endpoint"], "keys": device["keys"]}}
    assert client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json=body).status_code == 201
    web_push_testing.expire(device["clientHash"])
    client.post("/admin/test-devices/send/preset/welcome", data={"csrf_token": csrf})
    assert dispatch(app, clock.now())["expired"] == 1
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "no longer reachable" in page and "last test: expired" in page
    client.post("/admin/test-devices/send/preset/welcome", data={"csrf_token": csrf})
    assert "no test device to send to" in client.get("/admin/events").get_data(as_text=True)
    assert client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json=body).status_code == 201
    assert "no longer reachable" not in client.get("/admin/settings").get_data(as_text=True)


def test_a_device_is_refused_for_a_bad_subscription_and_scoped_to_its_shop(app, client, session, clock,
                                                                           web_push_testing):
    new, other = make_shop(session, clock.now(), name="Acme"), make_shop(session, clock.now(), name="Other")
    session.commit()
    csrf = log_in(client, new.admin_token)
    key = _key_of(client.get("/admin/settings").get_data(as_text=True))
    device = web_push_testing.subscribe(key)
    body = {"name": "Laptop", "subscription": {"endpoint": device["endpoint"], "keys": device["keys"]}}
    assert client.post("/admin/test-devices", json=body).status_code == 400, "the CSRF header is needed"
    bad_keys = {**body, "subscription": {"endpoint": device["endpoint"], "keys": {"p256dh": "AAAA", "auth": "AAAA"}}}
    refused = client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json=bad_keys)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "invalid_keys"
    no_name = client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json={**body, "name": "  "})
    assert no_name.status_code == 422
    assert client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json=body).status_code == 201
    theirs = make_subscription(session, make_visitor(session, other.shop.id, clock.now()), clock.now())
    session.commit()
    device_id = session.scalars(sa.select(TestDevice.id)).one()
    # The other shop's merchant can neither see, remove nor use this shop's device.
    theirs_client = app.test_client()
    csrf_other = log_in(theirs_client, other.admin_token)
    assert "Laptop" not in theirs_client.get("/admin/settings").get_data(as_text=True)
    theirs_client.post(f"/admin/test-devices/{device_id}/remove", data={"csrf_token": csrf_other})
    assert session.scalar(sa.select(sa.func.count()).select_from(TestDevice)) == 1
    theirs_client.post("/admin/test-devices/send/preset/welcome", data={"csrf_token": csrf_other})
    assert session.scalar(sa.select(sa.func.count()).select_from(Push)) == 0
    assert theirs.status == "active"


def test_the_dashboard_serves_the_shops_worker_for_its_test_devices(app, client, session, clock):
    new = make_shop(session, clock.now())
    session.commit()
    assert client.get("/admin/test-devices/sw.js").status_code == 302  # behind the log-in
    log_in(client, new.admin_token)
    worker = client.get("/admin/test-devices/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.get_data(as_text=True) == worker_source(app.config["PUBLIC_URL"]) + "\n"
    assert client.get(worker_source(app.config["PUBLIC_URL"]).split('"')[1]).status_code == 200  # what it imports


def test_an_on_site_messages_test_push_opens_the_shop_page_that_previews_it(app, client, session, clock,
                                                                            web_push_testing):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=["https://shop.example"])
    session.commit()
    bearer = {"Authorization": f"Bearer {new.admin_token}"}
    message = client.post("/v1/admin/onsite/messages", headers=bearer, json={
        "name": "Sale banner", "status": "paused", "rule": {"page": "prefix", "path_prefix": "/sale", "min_visits": 5},
        "content": {"title": "20% off the sale", "text": "Today only", "image": "https://shop.example/sale.png"}}).json
    csrf = log_in(client, new.admin_token)
    page = client.get(f"/admin/onsite/{message['id']}").get_data(as_text=True)
    assert 'id="test-onsite"' in page and "opens https://shop.example/sale (the rule&#39;s URL prefix)" in page
    key = _key_of(client.get("/admin/settings").get_data(as_text=True))
    device = web_push_testing.subscribe(key)
    assert client.post("/admin/test-devices", headers={"X-CSRFToken": csrf}, json={
        "name": "Pixel 8", "subscription": {"endpoint": device["endpoint"], "keys": device["keys"]}}).status_code == 201

    sent = client.post(f"/admin/test-devices/send/onsite/{message['id']}", data={"csrf_token": csrf})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"/admin/onsite/{message['id']}")
    assert dispatch(app, clock.now())["sent"] == 1
    [push] = web_push_testing.notifications(device["clientHash"])
    assert (push["kind"], push["title"], push["body"]) == ("test", "Preview: 20% off the sale", "Today only")
    assert push["image"] == "https://shop.example/sale.png"
    opened = client.get(push["url"].removeprefix(app.config["PUBLIC_URL"]))
    assert opened.status_code in (302, 303), opened.status_code
    target = opened.headers["Location"]
    assert target.startswith("https://shop.example/sale?pushcart_preview="), target

    # That page previews the paused message at once (its rule wants a fifth visit), counted nowhere
    origin = {"Origin": "https://shop.example"}
    config = client.get(f"/v1/shops/{new.shop.public_key}/config",
                        query_string={"page": "/sale?" + target.split("?", 1)[1]}, headers=origin).json
    assert "onsite" in config
    answer = client.post(f"/v1/shops/{new.shop.public_key}/onsite", headers=origin,
                         json={"visitor_id": "visitor-new-0001", "url": target, "dwell": 0}).json
    assert answer["message"]["title"] == "20% off the sale"
    report = client.get(f"/v1/admin/onsite/messages/{message['id']}", headers=bearer).json["report"]
    assert report["impressions"] == 0

    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"])
    session.commit()
    assert client.post("/v1/admin/onsite/messages", headers={"Authorization": f"Bearer {other.admin_token}"}, json={
        "name": "Theirs", "rule": {"page": "any"}, "content": {"title": "Not yours"}}).status_code == 201
    theirs = session.scalars(sa.select(OnsiteMessage.id).where(OnsiteMessage.shop_id == other.shop.id)).one()
    client.post(f"/admin/test-devices/send/onsite/{theirs}", data={"csrf_token": csrf})
    assert "no such on-site message" in client.get("/admin/onsite").get_data(as_text=True)
    assert dispatch(app, clock.now())["sent"] == 0
