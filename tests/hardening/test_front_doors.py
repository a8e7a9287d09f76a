"""Every merchant route sits behind one of the two front doors (``server/merchant/doors.py``).

The walk covers the whole URL map, so a route added later is covered without a test of its
own: under ``/v1/admin`` a request without a Bearer token is 401; under ``/admin`` a page
without a log-in goes to the log-in form, and a POST without the CSRF token is refused, with
or without a log-in.
"""
from __future__ import annotations

import re

import pytest
from flask import Flask

from server.merchant.api import campaigns as campaigns_api
from tests.hardening.conftest import assert_json_error

OPEN_PAGES = {"/admin/login", "/admin/invite/<token>"}  # the log-in form and an invitation link
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def merchant_requests(app: Flask) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every merchant rule, its arguments filled with sample values."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/v1/admin", "/admin")) or rule.rule in OPEN_PAGES:
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if m.group(0).startswith("<int:") else "welcome", rule.rule)
        found += [(method, url, rule.endpoint) for method in METHODS if method in rule.methods]
    return found


def unguarded(app: Flask, session_token: str | None = None) -> list[str]:
    """The merchant requests that were not refused as the doors refuse them."""
    client = app.test_client()
    if session_token is not None:
        form = client.get("/admin/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', form).group(1)
        assert client.post("/admin/login", data={"token": session_token, "csrf_token": csrf}).status_code == 302
    offenders = []
    for method, url, endpoint in merchant_requests(app):
        response = client.open(url, method=method)
        if url.startswith("/v1/admin"):
            # A dashboard session opens no API route: the API takes the Bearer token only.
            refused = response.status_code == 401 and response.headers.get("WWW-Authenticate", "").startswith("Bearer")
        elif method == "GET":
            refused = session_token is not None or (
                response.status_code == 302 and response.headers["Location"].endswith("/admin/login"))
        else:  # every state-changing page request without the CSRF token
            refused = response.status_code == 400 and b"form expired" in response.data
        if not refused:
            offenders.append(f"{method} {url} ({endpoint}) -> {response.status_code}")
    return offenders


def test_every_admin_route_refuses_a_request_without_credentials(app):
    requests = merchant_requests(app)
    assert len(requests) > 50  # the walk sees the whole merchant side, not a part of it
    assert {endpoint.split(".")[0] for _, _, endpoint in requests} == {"admin_api", "dashboard"}
    assert unguarded(app) == []


def test_every_dashboard_post_needs_the_csrf_token_when_logged_in(app, new_shop):
    assert unguarded(app, session_token=new_shop.admin_token) == []


def test_the_walk_finds_a_child_registered_outside_its_door(app_config, make_app):
    app = make_app(app_config)
    app.register_blueprint(campaigns_api.bp, name="stray", url_prefix="/v1/admin/stray")
    offenders = unguarded(app)
    assert offenders and all("/v1/admin/stray" in line for line in offenders), offenders


def test_an_api_error_under_the_door_keeps_the_json_shape(client):
    error = assert_json_error(client.get("/v1/admin/campaigns"), 401, "unauthorized")
    assert "Bearer" in error["message"]
