"""The public collect API: subscribe, unsubscribe, events, CORS per shop, and refusing bad input."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from server.core.models import Event, Subscription, Visitor
from server.planning import hooks
from server.collect.subscriptions import endpoint_hash
from tests.factories import browser_keys, make_shop

ORIGIN = "https://shop.example"
pytestmark = pytest.mark.shop(origins=[ORIGIN, "http://localhost:8000"])


@pytest.fixture
def calls(monkeypatch):
    """What the collect API handed to the preset hooks."""
    seen = {"subscriptions": [], "events": []}
    monkeypatch.setattr(hooks, "on_subscription_created",
                        lambda session, shop, visitor, sub, now: seen["subscriptions"].append((visitor.visitor_key, sub.id, now)))
    monkeypatch.setattr(hooks, "on_events",
                        lambda session, visitor, events, now: seen["events"].append([e.type for e in events]))
    return seen


def sub_body(endpoint="https://fcm.googleapis.com/fcm/send/abc123", visitor_id="visitor_0001", keys=None, **extra):
    return {"visitor_id": visitor_id,
            "subscription": {"endpoint": endpoint, "expirationTime": None, "keys": keys or browser_keys()},
            **extra}


def count(session, model):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_new_subscription_is_201_then_200_for_the_same_endpoint(client, session, shop, calls, clock):
    url = f"/v1/shops/{shop.public_key}/subscriptions"
    first = client.post(url, json=sub_body(locale="de-DE", timezone="Europe/Berlin"), headers={"Origin": ORIGIN})
    assert first.status_code == 201, first.get_json()
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    sub_id = first.get_json()["subscription_id"]
    keys = browser_keys()
    clock.advance(minutes=5)
    again = client.post(url, json=sub_body(keys=keys), headers={"Origin": ORIGIN})
    assert again.status_code == 200
    assert again.get_json() == {"subscription_id": sub_id}
    session.expire_all()
    sub = session.get(Subscription, sub_id)
    assert sub.endpoint_hash == endpoint_hash("https://fcm.googleapis.com/fcm/send/abc123")
    assert sub.p256dh == keys["p256dh"] and sub.status == "active"
    assert sub.last_seen_at == clock.now() and sub.created_at < clock.now()
    visitor = session.get(Visitor, sub.visitor_id)
    assert visitor.visitor_key == "visitor_0001" and visitor.locale == "de-DE" and visitor.timezone == "Europe/Berlin"
    assert count(session, Subscription) == 1
    # Only the new subscription was announced to the presets.
    assert [(v, s) for v, s, _ in calls["subscriptions"]] == [("visitor_0001", sub_id)]


def test_resubscribing_an_unsubscribed_endpoint_makes_it_active_again(client, session, shop, calls):
    url = f"/v1/shops/{shop.public_key}/subscriptions"
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAB"
    sub_id = client.post(url, json=sub_body(endpoint)).get_json()["subscription_id"]
    gone = client.delete(url, json={"endpoint": endpoint}, headers={"Origin": ORIGIN})
    assert gone.status_code == 204 and gone.data == b""
    session.expire_all()
    sub = session.get(Subscription, sub_id)
    assert sub.status == "unsubscribed" and sub.ended_at is not None
    back = client.post(url, json=sub_body(endpoint))
    assert back.status_code == 200
    session.expire_all()
    sub = session.get(Subscription, sub_id)
    assert sub.status == "active" and sub.ended_at is None
    assert len(calls["subscriptions"]) == 1
    # Unsubscribing an endpoint the shop never saw changes nothing and says nothing.
    assert client.delete(url, json={"endpoint": "https://fcm.googleapis.com/fcm/send/zzz"}).status_code == 204


def test_one_shops_endpoint_is_not_anothers(client, session, shop, clock):
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"]).shop
    session.commit()
    body = sub_body()
    assert client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body).status_code == 201
    assert client.post(f"/v1/shops/{other.public_key}/subscriptions", json=body).status_code == 201
    # The other shop's unsubscribe leaves the first shop's subscription alone.
    client.delete(f"/v1/shops/{other.public_key}/subscriptions", json={"endpoint": body["subscription"]["endpoint"]})
    session.expire_all()
    statuses = dict(session.execute(sa.select(Subscription.shop_id, Subscription.status)).all())
    assert statuses == {shop.id: "active", other.id: "unsubscribed"}


@pytest.mark.parametrize("endpoint, code", [
    ("http://fcm.googleapis.com/fcm/send/x", "invalid_endpoint"),
    ("https://evil.example/push", "endpoint_not_allowed"),
    ("http://127.0.0.1:9000/notify/x", "invalid_endpoint"),
    ("https://127.0.0.1/notify/x", "endpoint_not_allowed"),
    ("https://fcm.googleapis.com:8443/x", "invalid_endpoint"),
])
def test_endpoints_outside_the_policy_get_422_and_store_nothing(client, session, shop, endpoint, code):
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(endpoint))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
    assert count(session, Subscription) == 0 and count(session, Visitor) == 0


def test_an_allowed_host_that_does_not_resolve_right_now_is_accepted(client, session, shop):
    # No lookup at subscribe time (a DNS hiccup must not lose a subscriber): the sender checks
    # the addresses it connects to.
    body = sub_body("https://nowhere.invalid.push.apple.com/x")
    assert client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body).status_code == 201
    assert count(session, Subscription) == 1


def test_the_insecure_flag_opens_http_loopback_ports_only(client, app, session, shop):
    app.config["PUSHCART_INSECURE_ENDPOINTS"] = True
    for endpoint in ("https://127.0.0.1/x", "https://localhost:9443/x", "http://10.0.0.5:8080/x"):
        response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(endpoint))
        assert response.status_code == 422, endpoint
    assert count(session, Subscription) == 0


def test_local_mock_push_service_is_allowed_only_with_the_insecure_flag(client, app, session, shop):
    body = sub_body("http://localhost:41234/notify/abc")
    assert client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body).status_code == 422
    app.config["PUSHCART_INSECURE_ENDPOINTS"] = True
    assert client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=body).status_code == 201


def _point_off_curve() -> str:
    from tests.factories import b64url
    return b64url(b"\x04" + b"\x01" * 64)


@pytest.mark.parametrize("keys", [
    {"p256dh": _point_off_curve(), "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    {"p256dh": "BAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    {"p256dh": "not base64!", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    {"auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    "short-auth",
    "compressed",
])
def test_bad_keys_get_422_and_store_nothing(client, session, shop, keys):
    if keys == "short-auth":
        keys = {**browser_keys(), "auth": "AAAAAAAAAAAAAAAA"}  # 12 bytes
    elif keys == "compressed":
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        from tests.factories import b64url
        point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            Encoding.X962, PublicFormat.CompressedPoint)
        keys = {"p256dh": b64url(point), "auth": browser_keys()["auth"]}
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(keys=keys))
    assert response.status_code == 422, response.get_json()
    assert "error" in response.get_json()
    assert count(session, Subscription) == 0


@pytest.mark.parametrize("visitor_id", ["short", "x" * 65, "has space__", "../../etc", "émoji_visitor", 12345678])
def test_bad_visitor_ids_get_422(client, session, shop, visitor_id):
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", json=sub_body(visitor_id=visitor_id))
    assert response.status_code == 422
    assert count(session, Visitor) == 0


def test_unknown_shop_is_404_for_every_call(client, session, shop):
    for method, path, body in [("post", "subscriptions", sub_body()), ("delete", "subscriptions", {"endpoint": "x"}),
                               ("post", "events", {"visitor_id": "visitor_0001", "events": [{"type": "page_view"}]}),
                               ("get", "config", None), ("options", "events", None)]:
        response = getattr(client, method)(f"/v1/shops/pk_unknown/{path}", json=body, headers={"Origin": ORIGIN})
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "unknown_shop"
        assert "Access-Control-Allow-Origin" not in response.headers
    assert count(session, Visitor) == 0


def test_preflight_is_answered_per_shop(client, session, shop, clock):
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"]).shop
    session.commit()
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    ok = client.options(f"/v1/shops/{shop.public_key}/subscriptions", headers=headers)
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"] and "DELETE" in ok.headers["Access-Control-Allow-Methods"]
    assert ok.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert "Origin" in ok.headers["Vary"]
    refused = client.options(f"/v1/shops/{other.public_key}/subscriptions", headers=headers)
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    # Origins are compared normalised: case and default port do not matter, scheme and port do.
    assert client.options(f"/v1/shops/{shop.public_key}/events",
                          headers={**headers, "Origin": "HTTPS://Shop.Example:443"}).status_code == 204
    for bad in ("http://shop.example", "https://shop.example:8443", "https://evil.example", "null",
                "https://shop.example.evil.example"):
        assert client.options(f"/v1/shops/{shop.public_key}/events", headers={**headers, "Origin": bad}).status_code == 403


def test_a_foreign_origin_gets_403_and_stores_nothing(client, session, shop, calls):
    for path, body in [("subscriptions", sub_body()),
                       ("events", {"visitor_id": "visitor_0001", "events": [{"type": "page_view"}]})]:
        response = client.post(f"/v1/shops/{shop.public_key}/{path}", json=body,
                               headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden_origin"
    assert client.get(f"/v1/shops/{shop.public_key}/config", headers={"Origin": "https://evil.example"}).status_code == 403
    assert count(session, Visitor) == 0 and count(session, Event) == 0 and count(session, Subscription) == 0
    assert calls == {"subscriptions": [], "events": []}


def test_config_answers_the_shop_origin_with_cors(client, shop):
    response = client.get(f"/v1/shops/{shop.public_key}/config", headers={"Origin": "http://localhost:8000"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert set(response.get_json()) == {"vapid_public_key", "prompt", "sw_path", "platform"}


PRODUCT = {"id": "sku-1", "title": "Linen Shirt", "price": "49.90", "currency": "EUR",
           "url": "https://shop.example/p/linen", "image": "https://shop.example/i/linen.jpg"}
CART = {"token": "cart_abc", "total": 99.8, "currency": "EUR", "item_count": 2,
        "checkout_url": "https://shop.example/checkout", "items": [{"id": "sku-1", "quantity": 2, "price": 49.9}]}


def test_events_are_stored_in_order_with_server_time(client, session, shop, calls, clock):
    batch = {"visitor_id": "visitor_0001", "events": [
        {"type": "page_view", "id": "e1", "url": "https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=spring",
         "referrer": "https://search.example/q"},
        {"type": "product_view", "id": "e2", "url": "https://shop.example/p/linen", "product": PRODUCT,
         "occurred_at": "1999-01-01T00:00:00Z"},
        {"type": "add_to_cart", "id": "e3", "product": PRODUCT, "cart": CART},
        {"type": "identify", "id": "e4", "email": "Alex@Example.com", "customer_id": "c-42", "first_name": "Alex"},
        {"type": "checkout_started", "id": "e5", "cart": CART},
        {"type": "leave", "id": "e6"},
    ]}
    response = client.post(f"/v1/shops/{shop.public_key}/events", data=json.dumps(batch),
                           content_type="text/plain;charset=UTF-8", headers={"Origin": ORIGIN})
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"accepted": 6}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    session.expire_all()
    events = session.scalars(sa.select(Event).order_by(Event.id)).all()
    assert [e.type for e in events] == ["page_view", "product_view", "add_to_cart", "identify", "checkout_started", "leave"]
    assert {e.occurred_at for e in events} == {clock.now()}  # the client's occurred_at is ignored
    assert events[1].product == PRODUCT
    assert events[2].cart["total"] == "99.80" and Decimal(events[2].cart["total"]) == Decimal("99.8")
    assert events[2].cart["items"][0]["price"] == "49.90"
    visitor = session.get(Visitor, events[0].visitor_id)
    assert (visitor.utm_source, visitor.utm_medium, visitor.utm_campaign) == ("news", "email", "spring")
    assert visitor.referrer == "https://search.example/q" and visitor.landing_url.startswith("https://shop.example/?utm")
    assert (visitor.email, visitor.customer_id, visitor.first_name) == ("alex@example.com", "c-42", "Alex")
    assert visitor.last_event_at == clock.now()
    assert calls["events"] == [["page_view", "product_view", "add_to_cart", "identify", "checkout_started", "leave"]]


def test_a_repeated_event_id_is_stored_once(client, session, shop, calls, clock):
    url = f"/v1/shops/{shop.public_key}/events"
    batch = {"visitor_id": "visitor_0001", "events": [{"type": "page_view", "id": "a1", "url": "https://shop.example/"},
                                                      {"type": "leave", "id": "a2"}, {"type": "leave", "id": "a2"}]}
    assert client.post(url, json=batch).get_json() == {"accepted": 3}
    assert count(session, Event) == 2
    clock.advance(seconds=30)
    batch["events"].append({"type": "page_view", "id": "a3", "url": "https://shop.example/later?utm_source=x"})
    assert client.post(url, json=batch).get_json() == {"accepted": 4}
    assert count(session, Event) == 3
    assert client.post(url, json=batch).get_json() == {"accepted": 4}
    session.expire_all()
    assert session.scalars(sa.select(Event.client_event_id).order_by(Event.id)).all() == ["a1", "a2", "a3"]
    # Only new events reach the presets; the source stays the first page view's.
    assert calls["events"] == [["page_view", "leave"], ["page_view"]]
    visitor = session.scalars(sa.select(Visitor)).one()
    assert visitor.landing_url == "https://shop.example/" and visitor.utm_source is None


def test_events_without_ids_are_all_stored(client, session, shop):
    batch = {"visitor_id": "visitor_0001", "events": [{"type": "leave"}, {"type": "leave"}]}
    assert client.post(f"/v1/shops/{shop.public_key}/events", json=batch).get_json() == {"accepted": 2}
    assert count(session, Event) == 2


def test_a_batch_over_fifty_events_is_413(client, session, shop):
    batch = {"visitor_id": "visitor_0001", "events": [{"type": "leave", "id": f"x{i}"} for i in range(51)]}
    response = client.post(f"/v1/shops/{shop.public_key}/events", json=batch)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_many_events"
    batch["events"] = batch["events"][:50]
    assert client.post(f"/v1/shops/{shop.public_key}/events", json=batch).status_code == 202


def test_an_oversized_body_is_413(client, session, shop):
    body = json.dumps({"visitor_id": "visitor_0001", "events": [{"type": "leave", "pad": "x" * 70_000}]})
    response = client.post(f"/v1/shops/{shop.public_key}/events", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert count(session, Event) == 0


@pytest.mark.parametrize("event", [
    {"type": "purchase"},
    {"type": "page_view", "url": "javascript:alert(1)"},
    {"type": "page_view", "url": "data:text/html,hi"},
    {"type": "page_view", "referrer": "ftp://x.example/"},
    {"type": "page_view", "url": "https://shop.example/" + "a" * 3000},
    {"type": "product_view", "product": {**PRODUCT, "price": "-1"}},
    {"type": "product_view", "product": {**PRODUCT, "price": "1.999"}},
    {"type": "product_view", "product": {**PRODUCT, "price": "NaN"}},
    {"type": "product_view", "product": {**PRODUCT, "price": "Infinity"}},
    {"type": "product_view", "product": {**PRODUCT, "currency": "euro"}},
    {"type": "product_view", "product": {**PRODUCT, "title": "t" * 301}},
    {"type": "product_view", "product": {**PRODUCT, "image": "javascript:x"}},
    {"type": "product_view", "product": {"title": "no id"}},
    {"type": "add_to_cart", "cart": {**CART, "total": -5}},
    {"type": "add_to_cart", "cart": {**CART, "item_count": "many"}},
    {"type": "add_to_cart", "cart": {**CART, "checkout_url": "javascript:void(0)"}},
    {"type": "checkout_started", "cart": {"total": 1, "currency": "EUR", "item_count": 1}},
    {"type": "identify", "email": "not an email"},
    {"type": "leave", "id": "has space"},
    {"type": "leave", "id": "x" * 65},
])
def test_invalid_events_get_422_and_the_whole_batch_is_refused(client, session, shop, event):
    batch = {"visitor_id": "visitor_0001", "events": [{"type": "page_view", "id": "ok1"}, event]}
    response = client.post(f"/v1/shops/{shop.public_key}/events", json=batch)
    assert response.status_code == 422, event
    assert response.get_json()["error"]["code"] == "invalid_field"
    assert count(session, Event) == 0 and count(session, Visitor) == 0


@pytest.mark.parametrize("data, content_type, status", [
    ("{not json", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ('"just a string"', "text/plain", 400),
    ("\xff\xfe", "text/plain", 400),
    ('{"visitor_id": "visitor_0001", "events": []}', "application/json", 422),
    ('{"visitor_id": "visitor_0001", "events": {"type": "leave"}}', "application/json", 422),
    ('{"visitor_id": "visitor_0001"}', "application/json", 422),
    ('{"visitor_id": "visitor_0001", "events": [{"type": "leave"}]}', "application/xml", 400),
])
def test_malformed_bodies_get_a_clear_4xx(client, session, shop, data, content_type, status):
    response = client.post(f"/v1/shops/{shop.public_key}/events", data=data, content_type=content_type)
    assert response.status_code == status
    assert set(response.get_json()["error"]) == {"code", "message"}
    assert count(session, Event) == 0


def test_a_subscription_body_that_is_not_an_object_is_400(client, shop):
    response = client.post(f"/v1/shops/{shop.public_key}/subscriptions", data="[]", content_type="application/json")
    assert response.status_code == 400
