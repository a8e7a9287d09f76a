"""The demo storefront at ``/demo/``: what a newcomer opens after ``make run``.

A tiny shop (home, three product pages with schema.org JSON-LD, cart, checkout) that embeds
the widget exactly as a real theme would, serves its own ``/pushcart-sw.js``, and whose "Pay"
button makes the demo's *back end* send the signed ``orders`` webhook to Pushcart, as a real
shop's server would. The demo shop is the one ``flask --app wsgi demo init`` created
(``instance/demo_shop.json``), or ``app.config["DEMO_SHOP"]`` in tests.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, render_template, request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.core.embed import worker_source
from server.core.clock import get_clock
from server.core.errors import error_response
from server.collect.events import VisitorKey
from server.core.validation import parse, read_json

log = logging.getLogger(__name__)

bp = Blueprint("demo", __name__, url_prefix="/demo",
               static_folder=str(Path(__file__).resolve().parent / "demo_static"), static_url_path="/static")
root_bp = Blueprint("demo_root", __name__)

WEBHOOK_TIMEOUT = 10  # seconds


@dataclass(frozen=True)
class Product:
    slug: str
    sku: str
    title: str
    price: Decimal
    blurb: str


CATALOG: dict[str, Product] = {p.slug: p for p in (
    Product("linen-shirt", "SKU-LINEN-01", "Linen Shirt", Decimal("49.00"),
            "Breathable European linen, cut for warm days and cool evenings."),
    Product("canvas-sneakers", "SKU-SNEAK-02", "Canvas Sneakers", Decimal("79.90"),
            "Vulcanised rubber soles and organic cotton canvas. Made to be worn in."),
    Product("wool-scarf", "SKU-SCARF-03", "Merino Wool Scarf", Decimal("34.50"),
            "Soft, warm and light: fine merino in a generous length."),
)}
BY_SKU = {p.sku: p for p in CATALOG.values()}
CURRENCY = "USD"


def demo_shop() -> dict[str, Any]:
    """The demo shop's keys (``public_key``, ``secret``); 404 with a hint when there is none."""
    shop = current_app.config.get("DEMO_SHOP")
    if not shop:
        path = Path(current_app.instance_path) / "demo_shop.json"
        if path.exists():
            shop = json.loads(path.read_text())
    if not shop:
        abort(404, description="No demo shop yet: run `flask --app wsgi demo init` (make run does).")
    return shop


def _page(template: str, **context: Any) -> str:
    public_url = current_app.config["PUBLIC_URL"]
    return render_template(f"demo/{template}", shop=demo_shop(), public_url=public_url,
                           catalog=list(CATALOG.values()), currency=CURRENCY, **context)


@bp.get("/")
def home() -> str:
    """The shop's front page."""
    return _page("home.html")


@bp.get("/products/<slug>")
def product(slug: str) -> str:
    """A product page with schema.org ``Product`` JSON-LD (the widget records a product_view)."""
    item = CATALOG.get(slug)
    if item is None:
        abort(404)
    public_url = current_app.config["PUBLIC_URL"]
    ld = {
        "@context": "https://schema.org", "@type": "Product", "sku": item.sku, "name": item.title,
        "description": item.blurb, "url": f"{public_url}/demo/products/{item.slug}",
        "image": f"{public_url}/demo/static/{item.slug}.svg",
        "offers": {"@type": "Offer", "price": str(item.price), "priceCurrency": CURRENCY,
                   "availability": "https://schema.org/InStock"},
    }
    return _page("product.html", item=item, ld=ld)


@bp.get("/cart")
def cart() -> str:
    """The cart (kept in the browser, as many themes do)."""
    return _page("cart.html")


@bp.get("/checkout")
def checkout() -> str:
    """The checkout page: the widget records checkout_started; "Pay" completes the order."""
    return _page("checkout.html")


@bp.get("/thanks")
def thanks() -> str:
    """The order confirmation."""
    order_id = request.args.get("order", "")
    return _page("thanks.html", order_id=order_id if order_id.isalnum() and len(order_id) <= 32 else "")


class PayItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(max_length=64)]
    quantity: int = Field(ge=1, le=20)


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cart_token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    visitor_id: VisitorKey | None = None
    email: Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    items: list[PayItem] = Field(min_length=1, max_length=20)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Pushcart-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    public = urlsplit(current_app.config["PUBLIC_URL"])
    return origin == f"{public.scheme}://{public.netloc}"


@bp.post("/pay")
def pay() -> Response | tuple[dict[str, Any], int]:
    """The demo's back end: price the cart from the catalog and send the signed orders webhook."""
    if not _same_origin():
        return error_response(403, "forbidden_origin", "pay only from the demo shop's own pages")
    # JSON only: a cross-site form cannot send it without a preflight nobody answers.
    data = parse(PayIn, read_json(request))
    shop = demo_shop()
    lines = []
    for line in data.items:
        item = BY_SKU.get(line.id)
        if item is None:
            return error_response(422, "invalid_field", f"items: unknown product {line.id[:64]!r}")
        lines.append({"id": item.sku, "title": item.title, "price": str(item.price), "quantity": line.quantity})
    total = sum((Decimal(x["price"]) * x["quantity"] for x in lines), Decimal("0"))
    order_id = "D" + str(secrets.randbelow(10**9)).zfill(9)
    order = {"id": "wh_" + secrets.token_hex(12), "order_id": order_id, "status": "paid",
             "checkout_token": data.cart_token, "total": f"{total:.2f}", "currency": CURRENCY, "items": lines}
    if data.visitor_id:
        order["visitor_id"] = data.visitor_id
    if data.email:
        order["email"] = data.email
    body = json.dumps(order, separators=(",", ":")).encode("utf-8")
    timestamp = int(get_clock().now().timestamp())
    url = f"{current_app.config['PUBLIC_URL']}/v1/webhooks/{shop['public_key']}/orders"
    import requests  # here, not at import: it would cost every command's start-up about 50 ms

    with requests.Session() as http:
        http.trust_env = False  # the shop talks to its Pushcart directly, not through a proxy from the environment
        try:
            answer = http.post(url, data=body, timeout=WEBHOOK_TIMEOUT, headers={
                "Content-Type": "application/json", "X-Pushcart-Signature": sign(shop["secret"], timestamp, body)})
        except requests.RequestException as exc:
            log.warning("demo order %s: the webhook could not be delivered (%s)", order_id, type(exc).__name__)
            return error_response(502, "webhook_failed", "the orders webhook could not be delivered")
    log.info("demo order %s: orders webhook answered %s", order_id, answer.status_code)
    if answer.status_code >= 300:
        return error_response(502, "webhook_failed", f"the orders webhook answered {answer.status_code}")
    return {"order_id": order_id, "total": order["total"], "currency": CURRENCY,
            "webhook_status": answer.status_code}, 200


@root_bp.get("/pushcart-sw.js")
def shop_worker() -> Response:
    """What a shop serves at its ``sw_path``: one line importing Pushcart's worker."""
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response
