"""The Install page's manifest check: it reads the shop's home page and the manifest it links
(from a real local web server playing the shop's origin) and says what iPhone and iPad visitors
need, a manifest with "display": "standalone", to add the shop to their Home Screen."""
from __future__ import annotations

import html
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.factories import make_shop
from tests.integration.merchant.test_dashboard import log_in

MANIFEST = {"name": "Shop", "display": "standalone", "icons": [{"src": "/i.png", "sizes": "512x512"}]}


class _Shop(BaseHTTPRequestHandler):
    pages: dict[str, tuple[int, bytes]] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        status, body = self.pages.get(self.path, (404, b"not found"))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/en/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shop_site(monkeypatch):
    """The shop's origin on a free local port; ``pages`` maps paths to (status, body)."""
    monkeypatch.setattr(_Shop, "requests", [])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def home(link: str) -> bytes:
    return f"<!doctype html><html><head><title>Shop</title>{link}</head><body>Hi</body></html>".encode()


def run_check(client, session, clock, origin, monkeypatch, pages, registered=None, platform="custom") -> str:
    monkeypatch.setattr(_Shop, "pages", pages)
    new = make_shop(session, clock.now(), origins=registered or [origin])
    new.shop.platform = platform
    session.commit()
    csrf = log_in(client, new.admin_token)
    page = client.post("/admin/install/manifest-check", data={"csrf_token": csrf, "origin": origin}).get_data(as_text=True)
    return html.unescape(re.search(r'id="manifest-result"[^>]*>(.*?)</p>', page, re.S).group(1))


@pytest.mark.parametrize("pages, ok, message", [
    ({"/": (200, home('<link rel="manifest" href="/app.webmanifest">')),
      "/app.webmanifest": (200, json.dumps(MANIFEST).encode())}, True, "can add the shop to their Home Screen"),
    ({"/": (200, home('<link rel="Manifest icon" href="app.json">')),
      "/app.json": (200, json.dumps({**MANIFEST, "icons": []}).encode())}, True, 'add "icons"'),
    ({"/": (200, home('<link rel="stylesheet" href="/s.css">'))}, False, 'add <link rel="manifest"'),
    ({"/": (200, home('<link rel="manifest" href="/m.json">')),
      "/m.json": (200, json.dumps({**MANIFEST, "display": "browser"}).encode())}, False, '"display": "standalone"'),
    ({"/": (200, home('<link rel="manifest" href="/m.json">')),
      "/m.json": (200, json.dumps({"display": "standalone"}).encode())}, False, 'no "name"'),
    ({"/": (200, home('<link rel="manifest" href="/m.json">')), "/m.json": (200, b"{nope")}, False, "not a JSON object"),
    ({"/": (200, home('<link rel="manifest" href="/m.json">'))}, False, "manifest answered HTTP 404"),
    ({"/": (302, b"")}, False, "follows none"),
])
def test_the_manifest_check_says_what_iphone_visitors_need(client, session, clock, shop_site, monkeypatch,
                                                            pages, ok, message):
    result = run_check(client, session, clock, shop_site, monkeypatch, pages)
    assert message in result and (("✓" in result) == ok), result


def test_a_manifest_on_another_origin_is_not_fetched(client, session, clock, shop_site, monkeypatch):
    pages = {"/": (200, home('<link rel="manifest" href="http://192.0.2.1/m.json">'))}
    result = run_check(client, session, clock, shop_site, monkeypatch, pages)
    assert "another origin" in result
    assert _Shop.requests == ["/"]


def test_the_manifest_check_reaches_only_registered_origins(client, session, clock, shop_site, monkeypatch):
    result = run_check(client, session, clock, shop_site, monkeypatch, {}, registered=["https://shop.example"])
    assert "registered origins" in result and _Shop.requests == []


NO_MANIFEST = {"/": (200, home('<link rel="stylesheet" href="/s.css">'))}


@pytest.mark.parametrize("platform, shopify_app, says", [
    ("woocommerce", False, ['The Pushcart plugin for WordPress links one from version 0.3.0: update the plugin',
                            'on its page (WooCommerce → Pushcart) tick "Web app manifest" and save']),
    ("shopify", True, ['The Pushcart app embed links one', 'App embeds → Pushcart, turn on "Link a web app manifest"']),
    ("shopify", False, ['Your app proxy serves one at /apps/pushcart/manifest.webmanifest',
                        'add <link rel="manifest" href="/apps/pushcart/manifest.webmanifest"> inside <head>']),
])
def test_without_a_manifest_the_check_names_what_the_shops_platform_integration_offers(
        app_config, make_app, clock, shop_site, monkeypatch, platform, shopify_app, says):
    from server.core.db import get_db
    app = make_app({**app_config, "SHOPIFY_CLIENT_SECRET": "shpss_operator_app" if shopify_app else None})
    with get_db(app).sessionmaker() as session:
        result = run_check(app.test_client(), session, clock, shop_site, monkeypatch, NO_MANIFEST, platform=platform)
    assert result.strip().startswith("✗") and "the home page links no web app manifest" in result, result
    for words in says:
        assert words in result, result
    # Only the shop's own platform's advice: no generic manifest.json recipe, no other platform.
    assert "/manifest.json" not in result
    assert ("WordPress" in result) == (platform == "woocommerce") and ("Shopify" in result) == shopify_app
