"""A marketer's session is refused (403) on every owner's route: the secrets, the platform
connection and the team; an owner's passes.

The protected set comes from the routes' own declaration (an ``OwnerOnly`` child of the
dashboard door, or a view marked ``owner_only``), so a route added to such a child is covered
without a test of its own. A second check keeps the declaration honest: every dashboard rule
whose URL names a secret, a token, the connection, the platform, the team or the log must be
declared, so a new secret route outside an owner's child fails here instead of opening silently.
"""
from __future__ import annotations

import re

import pytest
from flask import Blueprint, Flask

from server.core.models import Shop
from server.merchant.doors import is_owner_only
from tests.accounts_support import csrf_of, logged_in, make_user

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# The way in: open to anyone (the door's log-in and invitation pages) or to any logged-in user.
NOT_WALKED = {"dashboard.login", "dashboard.accept_invite", "dashboard.logout", "dashboard.logout_everywhere"}
# Words that make a route an owner's: a URL with one of them must be declared owner-only.
SENSITIVE = re.compile(r"secret|token|connect|platform|vapid|team|member|invit|audit|install|session", re.I)


def dashboard_requests(app: Flask) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) of every dashboard rule but the way in; arguments filled with ids
    no row has, so a walk changes nothing it could later need."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in NOT_WALKED:
            continue
        url = re.sub(r"<(int:)?(\w+)>", lambda m: "999999" if m.group(1) else "welcome", rule.rule)
        found += [(method, url, rule.endpoint) for method in METHODS if method in rule.methods]
    return found


def undeclared_sensitive_routes(app: Flask) -> list[str]:
    """Dashboard rules whose URL names something an owner's yet are not declared owner-only."""
    return sorted({f"{url} ({endpoint})" for _, url, endpoint in dashboard_requests(app)
                   if SENSITIVE.search(url) and not is_owner_only(app, endpoint)})


def walk(app: Flask, client) -> tuple[list[str], list[str]]:
    """Walk every dashboard request with ``client``'s session (CSRF token in the header, as the
    pages' scripts send it): the owner's routes that were not refused with 403, and the other
    routes that were."""
    csrf = csrf_of(client, "/admin/")
    not_refused, refused = [], []
    for method, url, endpoint in dashboard_requests(app):
        response = client.open(url, method=method, headers={"X-CSRFToken": csrf})
        line = f"{method} {url} ({endpoint}) -> {response.status_code}"
        assert response.status_code != 302 or not response.headers["Location"].endswith("/admin/login"), \
            f"the session ended during the walk: {line}"
        if is_owner_only(app, endpoint):
            if response.status_code != 403:
                not_refused.append(line)
        elif response.status_code == 403:
            refused.append(line)
    return not_refused, refused


def nav_of(page: str) -> str:
    """The dashboard nav of a page."""
    return re.search(r'<nav class="nav".*?</nav>', page, re.S).group(0)


@pytest.fixture
def team(app, session, new_shop, clock):
    """The shop with an owner and a marketer account."""
    make_user(session, new_shop.shop, clock.now(), "olga@shop.example", "owner")
    make_user(session, new_shop.shop, clock.now(), "mark@shop.example", "marketer")
    return new_shop


def test_the_owners_routes_are_declared(app):
    owners = {endpoint for _, _, endpoint in dashboard_requests(app) if is_owner_only(app, endpoint)}
    # The known owner's pages, at least: the walk below must not pass on an empty set.
    assert {"dashboard.connect.connect_page", "dashboard.connect.rotate", "dashboard.connect.make_token",
            "dashboard.team.team", "dashboard.team.invite", "dashboard.team.remove_member",
            "dashboard.team.audit_log", "dashboard.pages.install", "dashboard.pages.install_check_run"} <= owners
    assert undeclared_sensitive_routes(app) == []


def test_a_marketer_is_refused_on_every_owners_route_and_on_no_other(app, team):
    marketer = logged_in(app, "mark@shop.example")
    not_refused, refused = walk(app, marketer)
    assert not_refused == []
    assert refused == []
    assert marketer.get("/admin/events").status_code == 200  # still logged in after the walk


def test_an_owner_passes_every_route(app, team):
    owner = logged_in(app, "olga@shop.example")
    not_refused, refused = walk(app, owner)
    owners_requests = [r for r in dashboard_requests(app) if is_owner_only(app, r[2])]
    assert refused == []
    assert len(not_refused) == len(owners_requests) > 10  # each answered the owner with something else than 403
    assert owner.get("/admin/team").status_code == 200


def test_the_walk_fails_when_a_view_loses_its_marker(app, team, monkeypatch):
    install = app.view_functions["dashboard.pages.install"]
    monkeypatch.delattr(install, "owner_only")
    assert "/admin/install (dashboard.pages.install)" in undeclared_sensitive_routes(app)


def test_the_walk_fails_when_a_child_is_no_owners_child(app, team, monkeypatch):
    connect = app.blueprints["dashboard.connect"]
    monkeypatch.setattr(connect, "__class__", Blueprint)
    gaps = undeclared_sensitive_routes(app)
    assert "/admin/connect/secret/rotate (dashboard.connect.rotate)" in gaps
    assert "/admin/connect/token (dashboard.connect.make_token)" in gaps


def test_a_marketer_cannot_set_the_platform_or_its_secret_in_settings(app, team, session):
    marketer = logged_in(app, "mark@shop.example")
    page = marketer.get("/admin/settings").get_data(as_text=True)
    assert 'name="platform_secret"' not in page and 'name="platform"' not in page
    form = {"csrf_token": csrf_of(marketer, "/admin/settings"), "name": "Renamed", "origins": "https://shop.example",
            "sw_path": "/pushcart-sw.js", "prompt_text": "Notify me?", "prompt_color": "#112233",
            "after_pageviews": "3", "after_seconds": "0", "dismiss_days": "7", "frequency_cap_per_24h": "2",
            "attribution_hours": "48"}
    assert marketer.post("/admin/settings", data={**form, "platform_secret": "shpss_mine"}).status_code == 403
    assert marketer.post("/admin/settings", data={**form, "platform": "shopify"}).status_code == 403
    session.expire_all()
    shop = session.get(Shop, team.shop.id)
    assert (shop.platform_secret, shop.platform, shop.name) == (None, "custom", "Test Shop")
    saved = marketer.post("/admin/settings", data=form)
    assert saved.status_code == 302 and saved.headers["Location"] == "/admin/settings"
    assert "Settings saved." in marketer.get("/admin/settings").get_data(as_text=True)
    session.expire_all()
    assert session.get(Shop, team.shop.id).name == "Renamed"


def test_a_marketers_nav_has_no_owners_page(app, team):
    marketer = logged_in(app, "mark@shop.example")
    nav = nav_of(marketer.get("/admin/").get_data(as_text=True))
    for path in ("/admin/team", "/admin/audit", "/admin/install"):
        assert f'href="{path}"' not in nav, path
    first_steps = marketer.get("/admin/").get_data(as_text=True).split('id="first-steps"')[1]
    assert 'href="/admin/install"' not in first_steps and "an owner's step" in first_steps
    owner_nav = nav_of(logged_in(app, "olga@shop.example").get("/admin/").get_data(as_text=True))
    for path in ("/admin/team", "/admin/audit", "/admin/install"):
        assert f'href="{path}"' in owner_nav, path
