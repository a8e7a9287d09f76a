"""Security headers, session cookie flags, request ids and structured, address-free logs."""
from __future__ import annotations

import json
import logging
import re

import pytest

from server.ops.logs import AddressMaskFilter, JsonFormatter, RequestIdFilter
from server.ops.security import CONTENT_SECURITY_POLICY


def test_pages_get_a_strict_csp_and_no_framing(client, shop):
    for path, status in (("/admin/login", 200), ("/no-such-page", 404)):
        response = client.get(path)
        assert response.status_code == status and response.mimetype == "text/html", path
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp and re.search(r"script-src 'self'(;|$)", csp)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_scripts_and_json_get_nosniff_but_no_csp(client, shop):
    for path in ("/widget.js", "/sw.js", "/healthz", f"/v1/shops/{shop.public_key}/config"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        # A CSP on a worker script would bind the shop's own service worker.
        assert "Content-Security-Policy" not in response.headers, path
        assert "Strict-Transport-Security" not in response.headers  # PUBLIC_URL is http in tests


def test_merchant_answers_are_not_cached(client):
    response = client.get("/v1/admin/settings")
    assert response.status_code == 401 and response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def https_config(app_config):
    return {**app_config, "PUBLIC_URL": "https://push.shop.example"}


def test_behind_https_cookies_are_secure_and_hsts_is_sent(https_config, make_app):
    app = make_app(https_config)
    client = app.test_client()
    response = client.get("/admin/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = response.headers.get("Set-Cookie", "")
    assert cookie, "the log-in page starts a session (it holds the CSRF token)"
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_over_http_the_cookie_is_httponly_and_lax(client):
    cookie = client.get("/admin/login").headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_every_answer_carries_a_request_id(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    assert client.get("/healthz", headers={"X-Request-ID": "lb-0123456789"}).headers["X-Request-ID"] == "lb-0123456789"
    # Anything that is not a short token is replaced, so ids cannot inject into logs.
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id INFO forged"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", replaced)


def test_json_log_lines_carry_the_request_id(app):
    formatter = JsonFormatter()
    with app.test_request_context("/x"):
        from flask import g

        g.request_id = "req-12345678"
        record = logging.LogRecord("server.x", logging.INFO, __file__, 1, "push %s sent", (42,), None)
        RequestIdFilter().filter(record)
        line = json.loads(formatter.format(record))
    assert line["message"] == "push 42 sent" and line["request_id"] == "req-12345678"
    assert line["level"] == "INFO" and line["logger"] == "server.x" and line["time"].endswith("+00:00")


@pytest.mark.parametrize("msg, args, expected", [
    ('203.0.113.77 - - [23/Nov/2026 10:00:00] "%s" %s %s', ("GET /healthz HTTP/1.1", "200", "-"),
     '203.0.113.0 - - [23/Nov/2026 10:00:00] "GET /healthz HTTP/1.1" 200 -'),
    ('%(h)s "%(r)s" %(s)s', {"h": "2001:db8:abcd:12::7", "r": "POST /v1/x HTTP/1.1", "s": "202"},
     '2001:db8:abcd:: "POST /v1/x HTTP/1.1" 202'),
])
def test_access_log_addresses_are_truncated(msg, args, expected):
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, msg, args, None)
    AddressMaskFilter().filter(record)
    assert record.getMessage() == expected


def test_the_csp_has_no_inline_allowance():
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
