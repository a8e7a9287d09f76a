"""The served scripts (widget, service worker) and the demo storefront, including its signed "pay"."""
from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.factories import make_shop

ROOT = Path(__file__).resolve().parents[3]
WIDGET_BUDGET_GZIP = 5 * 1024
TERSER = ROOT / "node_modules" / ".bin" / "terser"


@pytest.fixture
def demo(app, session, clock):
    """The demo shop, created as `demo init` does, with its origin the service's own."""
    new = make_shop(session, clock.now(), name="Pushcart Demo Shop", origins=[app.config["PUBLIC_URL"]])
    session.commit()
    app.config["DEMO_SHOP"] = new.as_json()
    return new


def test_widget_is_served_as_javascript_within_its_size_budget(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "max-age" in response.headers["Cache-Control"]
    size = len(gzip.compress(response.data, compresslevel=9))
    assert size <= WIDGET_BUDGET_GZIP, f"widget.js is {size} bytes gzipped, budget {WIDGET_BUDGET_GZIP}"
    # A second request with the ETag is answered 304 (shops load it on every page).
    again = client.get("/widget.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_onsite_script_is_served_within_its_own_size_budget(client):
    response = client.get("/onsite.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    size = len(gzip.compress(response.data, compresslevel=9))
    assert size <= WIDGET_BUDGET_GZIP, f"onsite.js is {size} bytes gzipped, budget {WIDGET_BUDGET_GZIP}"


def test_service_worker_knows_the_public_url(client, app):
    response = client.get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    text = response.get_data(as_text=True)
    assert '"__PUSHCART_PUBLIC_URL__"' not in text
    assert 'var BASE = "http://pushcart.test";' in text
    assert "pushsubscriptionchange" in text and "notificationclick" in text


def test_the_demo_shop_serves_its_worker_file(client):
    response = client.get("/pushcart-sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.get_data(as_text=True).strip() == 'importScripts("http://pushcart.test/sw.js");'


@pytest.mark.skipif(not TERSER.exists(), reason="the npm packages are not installed (make node-deps)")
@pytest.mark.parametrize("build, dist, served", [("build:widget", "pushcart.min.js", "/widget.js"),
                                                 ("build:onsite", "pushcart-onsite.min.js", "/onsite.js")])
def test_the_served_widget_is_the_build_of_its_source(client, tmp_path, build, dist, served):
    # widget/dist/*.min.js are committed (serving needs no Node.js): each must be what
    # `make widget` builds from its source today, and what the service serves.
    script = json.loads((ROOT / "package.json").read_text())["scripts"][build]
    built = tmp_path / dist
    command = script.replace("terser", str(TERSER), 1).replace(f"widget/dist/{dist}", str(built))
    subprocess.run(command, shell=True, cwd=ROOT, check=True, timeout=60)
    assert built.read_bytes() == (ROOT / "widget" / "dist" / dist).read_bytes(), \
        f"widget/dist/{dist} is stale: run `make widget`"
    assert client.get(served).data == built.read_bytes()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("path", ["widget/pushcart.js", "widget/dist/pushcart.min.js", "widget/onsite.js",
                                  "widget/dist/pushcart-onsite.min.js", "service_worker/sw.js"])
def test_scripts_parse(path):
    result = subprocess.run(["node", "--check", str(ROOT / path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_demo_pages_embed_the_widget_and_product_json_ld(client, demo):
    home = client.get("/demo/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert f'<script src="http://pushcart.test/widget.js" data-shop="{demo.shop.public_key}" async></script>' in html
    links = re.findall(r'href="(/demo/products/[a-z-]+)"', html)
    assert len(set(links)) == 3
    for link in set(links):
        page = client.get(link).get_data(as_text=True)
        ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1))
        assert ld["@type"] == "Product" and ld["sku"] and ld["name"]
        assert ld["offers"]["priceCurrency"] == "USD" and re.fullmatch(r"\d+\.\d\d", ld["offers"]["price"])
        assert ld["url"] == "http://pushcart.test" + link
    for path in ("/demo/cart", "/demo/checkout", "/demo/thanks?order=D123", "/demo/static/demo.js",
                 "/demo/static/linen-shirt.svg"):
        with client.get(path) as response:
            assert response.status_code == 200, path
    assert client.get("/demo/products/nope").status_code == 404


def test_demo_pages_escape_what_they_echo(client, demo):
    page = client.get("/demo/thanks?order=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "alert(1)" not in page


def test_demo_without_a_demo_shop_explains_how_to_make_one(client):
    response = client.get("/demo/")
    assert response.status_code == 404
    assert "demo init" in response.get_data(as_text=True)


class _Capture(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args):
        pass


@pytest.fixture
def shop_backend_peer():
    """A tiny local HTTP server standing in for Pushcart's webhook endpoint."""
    _Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Capture.received
    server.shutdown()
    server.server_close()


def test_pay_sends_a_correctly_signed_orders_webhook(client, app, demo, clock, shop_backend_peer):
    base, received = shop_backend_peer
    app.config["PUBLIC_URL"] = base
    order = {"cart_token": "cart_0123456789", "visitor_id": "visitor_0001", "email": "alex@example.com",
             "items": [{"id": "SKU-LINEN-01", "quantity": 2}, {"id": "SKU-SCARF-03", "quantity": 1}]}
    response = client.post("/demo/pay", json=order, headers={"Origin": base})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["total"] == "132.50" and answer["webhook_status"] == 200
    [request] = received
    assert request["path"] == f"/v1/webhooks/{demo.shop.public_key}/orders"
    assert request["headers"]["Content-Type"] == "application/json"
    signature = dict(part.split("=", 1) for part in request["headers"]["X-Pushcart-Signature"].split(","))
    assert int(signature["t"]) == int(clock.now().timestamp())
    expected = hmac.new(demo.secret.encode(), f"{signature['t']}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature["v1"], expected)
    body = json.loads(request["body"])
    assert body["order_id"] == answer["order_id"] and body["status"] == "paid"
    assert body["checkout_token"] == "cart_0123456789" and body["visitor_id"] == "visitor_0001"
    assert body["total"] == "132.50" and body["currency"] == "USD" and body["email"] == "alex@example.com"
    assert [(i["id"], i["quantity"], i["price"]) for i in body["items"]] == [("SKU-LINEN-01", 2, "49.00"),
                                                                             ("SKU-SCARF-03", 1, "34.50")]
    assert body["id"]


@pytest.mark.parametrize("order, headers, status", [
    ({"cart_token": "cart_0123456789", "items": [{"id": "SKU-LINEN-01", "quantity": 1}]},
     {"Origin": "https://evil.example"}, 403),
    ({"cart_token": "cart_0123456789", "items": [{"id": "SKU-FREE", "quantity": 1}]}, {}, 422),
    ({"cart_token": "cart_0123456789", "items": [{"id": "SKU-LINEN-01", "quantity": 0}]}, {}, 422),
    ({"cart_token": "cart_0123456789", "items": [{"id": "SKU-LINEN-01", "quantity": 1, "price": "0.01"}]}, {}, 422),
    ({"cart_token": "x", "items": [{"id": "SKU-LINEN-01", "quantity": 1}]}, {}, 422),
])
def test_pay_refuses_foreign_origins_and_bad_carts(client, app, demo, shop_backend_peer, order, headers, status):
    base, received = shop_backend_peer
    app.config["PUBLIC_URL"] = base
    assert client.post("/demo/pay", json=order, headers=headers).status_code == status
    assert received == []


def test_pay_reports_an_unreachable_webhook(client, app, demo):
    app.config["PUBLIC_URL"] = "http://127.0.0.1:9"  # discard port: nothing listens
    response = client.post("/demo/pay", json={"cart_token": "cart_0123456789",
                                              "items": [{"id": "SKU-LINEN-01", "quantity": 1}]})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "webhook_failed"
