"""Secrets and capabilities never leak: a representative run of every audience's requests, then
a grep of everything captured (log records at DEBUG, response bodies and headers, command output)
for the VAPID private key, the shop's webhook secret and admin token, subscription endpoints and
keys, and whole client addresses.
"""
from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from server.core.models import Push
from server.core.shops import shop_by_public_key
from server.planning import hooks
from server.webhooks.native import sign
from tests.accounts_support import csrf_of, make_user
from tests.fakepush import Reply
from tests.hardening.conftest import ORIGIN

CLIENT_IP = "198.51.100.23"
STAFF_PASSWORD = "staff-password-never-shown"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PUSHCART_INSECURE_ENDPOINTS": True, "PUSH_READ_TIMEOUT": 10.0,
            "PUSH_CONNECT_TIMEOUT": 5.0, "RATELIMIT_NEW_SUBSCRIPTIONS": "2/hour"}


def vapid_secrets(path: str) -> list[str]:
    """The private key as PEM lines and as the raw scalar in base64url (how a log might show it)."""
    pem = Path(path).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    pem_lines = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return pem_lines + [base64.urlsafe_b64encode(scalar).rstrip(b"=").decode(), scalar.hex()]


class Recorder:
    """Everything the outside saw: response bodies and headers, command output."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def response(self, response):
        self.seen.append(response.get_data(as_text=True))
        self.seen.append(json.dumps(dict(response.headers)))
        return response

    def output(self, result):
        assert result.exit_code == 0, result.output
        self.seen.append(result.output)
        return result


def test_a_full_run_leaks_no_secret(app, client, runner, session, clock, fake, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    seen = Recorder()
    env = {"REMOTE_ADDR": CLIENT_IP}

    # The merchant creates a shop (the one place its secrets are shown, so not recorded).
    created = runner.invoke(args=["shop", "create", "--name", "Leak Test", "--origin", ORIGIN])
    shop = json.loads(created.output)
    key, secret, token = shop["public_key"], shop["secret"], shop["admin_token"]
    admin = {"Authorization": f"Bearer {token}"}

    # The widget: config, two subscriptions, events with identity, an unsubscribe.
    base = f"/v1/shops/{key}"
    seen.response(client.get(f"{base}/config", headers={"Origin": ORIGIN}, environ_base=env))
    endpoints = [fake.endpoint("alice"), fake.endpoint("gone")]
    for i, endpoint in enumerate(endpoints):
        body = {"visitor_id": f"visitor_leak_{i}", "subscription": {"endpoint": endpoint, "expirationTime": None,
                                                                    "keys": fake.keys()}}
        assert seen.response(client.post(f"{base}/subscriptions", json=body, headers={"Origin": ORIGIN},
                                         environ_base=env)).status_code == 201
    events = {"visitor_id": "visitor_leak_0", "events": [
        {"type": "identify", "id": "i1", "email": "alice@example.com", "first_name": "Alice"},
        {"type": "product_view", "id": "p1", "url": "https://shop.example/p/1",
         "product": {"id": "sku1", "title": "Mug", "price": "12.50", "currency": "USD", "url": "https://shop.example/p/1"}},
        {"type": "checkout_started", "id": "c1", "cart": {"token": "cart-tok-1", "total": "12.50", "currency": "USD",
                                                          "item_count": 1, "checkout_url": "https://shop.example/co/1"}}]}
    seen.response(client.post(f"{base}/events", json=events, headers={"Origin": ORIGIN}, environ_base=env))
    # Refusals: a bad endpoint, a rate-limited subscription, a broken body.
    bad = {"visitor_id": "visitor_leak_9", "subscription": {"endpoint": "https://evil.example/x",
                                                            "keys": fake.keys()}}
    seen.response(client.post(f"{base}/subscriptions", json=bad, environ_base=env))
    third = {"visitor_id": "visitor_leak_3", "subscription": {"endpoint": fake.endpoint("third"), "keys": fake.keys()}}
    # A third new subscription from one address within the hour is refused.
    assert seen.response(client.post(f"{base}/subscriptions", json=third, environ_base=env)).status_code == 429
    seen.response(client.post(f"{base}/events", data="[[[[", content_type="application/json", environ_base=env))

    # The shop's back end: signed webhooks, and one with a bad signature.
    now = int(clock.now().timestamp())
    for topic, body in (("checkouts", {"id": "w1", "checkout_token": "tok-9", "visitor_id": "visitor_leak_0",
                                       "email": "alice@example.com", "total": "30.00", "currency": "USD",
                                       "item_count": 1, "checkout_url": "https://shop.example/co/9"}),
                        ("orders", {"id": "w2", "order_id": "5001", "status": "paid", "visitor_id": "visitor_leak_1",
                                    "total": "30.00", "currency": "USD"}),
                        ("shipments", {"id": "w3", "order_id": "5001", "tracking_url": "https://carrier.example/t/1"})):
        raw = json.dumps(body).encode()
        seen.response(client.post(f"/v1/webhooks/{key}/{topic}", data=raw, content_type="application/json",
                                  headers={"X-Pushcart-Signature": sign(secret, now, raw)}))
    seen.response(client.post(f"/v1/webhooks/{key}/orders", data=b"{}", content_type="application/json",
                              headers={"X-Pushcart-Signature": sign("whsec_wrong", now, b"{}")}))

    # Delivery: the first pass sends; one endpoint is gone (410), a 500 is retried.
    fake.script("gone", Reply(status=410))
    fake.script("alice", Reply(status=500))
    seen.output(runner.invoke(args=["dispatch", "--once"]))
    clock.advance(hours=2)
    seen.output(runner.invoke(args=["dispatch", "--once"]))
    assert fake.payloads(), "the fake push service should have received pushes"

    # A click on a delivered push, the merchant API and pages, operations endpoints.
    link = fake.payloads()[-1]["url"]
    seen.response(client.get(link[link.index("/c/"):]))
    for path in ("/v1/admin/settings", "/v1/admin/events", "/v1/admin/pushes", "/v1/admin/visitors",
                 "/v1/admin/stats?from=2026-01-01&to=2026-01-31"):
        seen.response(client.get(path, headers=admin))
    seen.response(client.get("/v1/admin/settings", headers={"Authorization": "Bearer adm_not_it"}))
    for path in ("/healthz", "/metrics", "/widget.js", "/sw.js", "/admin/login"):
        seen.response(client.get(path))
    login_page = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    assert csrf, "the log-in form carries a CSRF token"
    logged_in = seen.response(client.post("/admin/login", data={"token": token, "csrf_token": csrf.group(1)}))
    assert logged_in.status_code == 302
    for path in ("/admin/", "/admin/events", "/admin/pushes", "/admin/visitors", "/admin/install", "/admin/settings"):
        assert seen.response(client.get(path)).status_code == 200, path
    # A staff account's log-in, a wrong one, and the account's pages: its password is never echoed or logged.
    staff = make_user(session, shop_by_public_key(session, key), clock.now(), "staff@shop.example", "owner",
                      STAFF_PASSWORD)
    staff_client = app.test_client()
    seen.response(staff_client.post("/admin/login", data={"email": staff.email, "password": STAFF_PASSWORD + "x",
                                                          "csrf_token": csrf_of(staff_client)}))
    assert seen.response(staff_client.post("/admin/login", data={"email": staff.email, "password": STAFF_PASSWORD,
                                                                 "csrf_token": csrf_of(staff_client)})).status_code == 302
    for path in ("/admin/team", "/admin/account", "/admin/audit"):
        assert seen.response(staff_client.get(path)).status_code == 200, path

    # A database error inside a request whose parameters hold an endpoint: the traceback is logged.
    def failing_hook(session_, shop_, visitor, subscription, now_):
        session_.execute(sa.text("SELECT :endpoint FROM no_such_table"), {"endpoint": subscription.endpoint})

    monkeypatch.setattr(hooks, "on_subscription_created", failing_hook)
    crash = {"visitor_id": "visitor_leak_5", "subscription": {"endpoint": fake.endpoint("crash"), "keys": fake.keys()}}
    endpoints += [fake.endpoint("third"), fake.endpoint("crash")]
    assert seen.response(client.post(f"{base}/subscriptions", json=crash)).status_code == 500

    # Privacy: forget a visitor through the API and the CLI.
    seen.response(client.delete("/v1/admin/visitors/visitor_leak_1", headers=admin))
    seen.output(runner.invoke(args=["visitor", "forget", "--shop", key, "--visitor", "visitor_leak_0"]))
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Push)) > 0

    logs = caplog.text + "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "unhandled error" in logs, "the forced failure should have been logged"
    assert len(caplog.records) >= 20, "the run should have logged"
    outside = "\n".join(seen.seen)
    forbidden = {"shop secret": secret, "admin token": token, "VAPID private key": None,
                 "staff password": STAFF_PASSWORD}
    for name, value in forbidden.items():
        if value:
            assert value not in logs, f"{name} in the logs"
            assert value not in outside, f"{name} in a response or command output"
    for line in vapid_secrets(app.config["VAPID_PRIVATE_KEY_FILE"]):
        assert line not in logs and line not in outside, "VAPID private key material leaked"
    for endpoint in endpoints:
        path = endpoint.split("/push/")[1]
        assert endpoint not in logs and f"/push/{path}" not in logs, "an endpoint in the logs"
        assert endpoint not in outside, "an endpoint in a response"
    for value in fake.keys().values():
        assert value not in logs and value not in outside, "a subscription key leaked"
    assert CLIENT_IP not in logs, "a whole client address in the logs"
