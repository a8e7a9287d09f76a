"""Shopify's webhooks as they are, and its app proxy.

Deliveries: ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with the shop's
``platform_secret`` or the operator's app client secret, ``SHOPIFY_CLIENT_SECRET``),
``X-Shopify-Topic``, ``X-Shopify-Webhook-Id`` (the same on every retry of one event: a repeat
changes nothing) and ``X-Shopify-Shop-Domain`` (must be the shop's myshopify domain when one is
set; the client secret counts only for a shop that has one). Each topic is translated into a native webhook model:

| topic | becomes |
| --- | --- |
| ``checkouts/create``, ``checkouts/update`` | a ``checkouts`` hook: token, ``abandoned_checkout_url``, ``cart_token`` (the widget's ``cart_update`` names the visitor), totals, line items, customer |
| ``orders/paid`` | an ``orders`` hook (paid): ``checkout_token`` stops the checkout's series |
| ``fulfillments/create`` | a ``shipments`` hook with the tracking link and company |
| ``products/update`` | one ``products`` hook per variant (price, stock) |

Other topics are answered 200 and ignored.

The operator's app (``integrations/shopify``) has one webhook URL and one proxy URL for every
shop: those deliveries name their shop by its myshopify domain (``X-Shopify-Shop-Domain``, the
proxy's ``shop`` parameter), which is read only after the client secret's signature has
matched, and must be held by exactly one Shopify shop (``shop_by_domain``).

The app proxy forwards
``GET /apps/<proxy>/pushcart-sw.js`` with a ``signature`` query parameter: the hex HMAC-SHA256
of the other parameters, sorted, as ``key=value`` joined with nothing. It forwards
``/apps/<proxy>/manifest.webmanifest`` the same way: the shop's web app manifest, which the app
embed links (Shopify themes rarely link one, and iPhones deliver web push only to a site added to
the Home Screen from one).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import orm
from werkzeug.datastructures import MultiDict

from server.core.errors import ApiError, Malformed, NotFound, Unauthorized
from server.core.models import Shop
from server.webhooks import platforms
from server.webhooks.native import CheckoutHook, OrderHook, ProductHook, ShipmentHook

log = logging.getLogger(__name__)

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
DOMAIN_HEADER = "X-Shopify-Shop-Domain"
RECEIPT_TOPIC = "shopify"  # webhook_receipts.topic: one name for all of Shopify's (its topics are longer)
DOMAIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$")
MAX_ITEMS = 100
DEFAULT_VARIANT = "Default Title"


class AmbiguousDomain(ApiError):
    status, code = 409, "ambiguous_shop_domain"


def secrets_for(shop: Shop, app_secret: str | None) -> list[str]:
    """The keys a delivery for the shop may be signed with: its own ``platform_secret`` (a
    webhook made on Shopify's Notifications page) and the operator app's client secret; raises
    Unauthorized when there is neither.

    The client secret counts only for a shop with a myshopify domain: it signs the deliveries
    of every shop on the app, so the domain they carry is what keeps one shop's delivery out of
    another's.
    """
    keys = [key for key in (shop.platform_secret, app_secret if shop.platform_domain else None) if key]
    if not keys and app_secret:
        raise Unauthorized("this shop has no myshopify domain in its settings (Settings → Shop domain), so the "
                           "Shopify app's deliveries cannot be matched to it", code="no_platform_secret")
    if not keys:
        platforms.require_secret(shop, "Shopify")
    return keys


def verify_app_proxy(app_secret: str | None, params: MultiDict[str, str]) -> None:
    """Check a request through the app's one proxy URL against the app's client secret; raises
    Unauthorized."""
    if not app_secret:
        raise Unauthorized("this service has no Shopify app: SHOPIFY_CLIENT_SECRET is not set", code="no_app_secret")
    verify_proxy_signature([app_secret], params)


def verify_app_delivery(app_secret: str | None, headers: Mapping[str, str], body: bytes) -> None:
    """Check a delivery to the app's one URL against the app's client secret, before anything of
    it (its shop domain included) is read; raises Unauthorized."""
    if not app_secret:
        raise Unauthorized("this service has no Shopify app: SHOPIFY_CLIENT_SECRET is not set", code="no_app_secret")
    platforms.verify_base64_hmac([app_secret], HMAC_HEADER, headers.get(HMAC_HEADER), body)


def shop_by_domain(session: orm.Session, domain: str | None) -> Shop:
    """The one Shopify shop whose ``platform_domain`` is this myshopify domain.

    Raises NotFound when no shop holds it, AmbiguousDomain when several do: a delivery then goes
    to none of them, since one of them has claimed another merchant's shop.
    """
    value = (domain or "").strip().lower()
    shops = session.scalars(sa.select(Shop).where(Shop.platform == "shopify", Shop.platform_domain == value)
                            .limit(2)).all() if DOMAIN_PATTERN.match(value) else []
    if not shops:
        log.info("Shopify app delivery for %s refused: no Shopify shop has this domain", value[:255])
        raise NotFound("no Shopify shop here has this myshopify domain in its settings", code="unknown_shop_domain")
    if len(shops) > 1:
        log.warning("Shopify app delivery for %s refused: several shops claim this domain", value)
        raise AmbiguousDomain(f"several shops claim {value}; the operator must settle which one it is")
    return shops[0]


def handle(session: orm.Session, shop: Shop, headers: Mapping[str, str], body: bytes,
           now: datetime, *, app_secret: str | None = None, verified: bool = False) -> dict[str, Any]:
    """Verify and apply one Shopify delivery; return the response body. ``verified``: the app's
    one URL already checked the signature with the client secret (``verify_app_delivery``).

    Raises Unauthorized (no secret, bad signature, another shop's domain), Malformed (no
    webhook id, not JSON) or Invalid (a field Pushcart keeps is unusable).
    """
    if not verified:
        platforms.verify_base64_hmac(secrets_for(shop, app_secret), HMAC_HEADER, headers.get(HMAC_HEADER), body)
    if shop.platform_domain:
        domain = (headers.get(DOMAIN_HEADER) or "").strip().lower()
        if domain != shop.platform_domain:
            raise Unauthorized("this delivery is from another Shopify shop than the one set in the settings",
                               code="wrong_shop_domain")
    topic = (headers.get(TOPIC_HEADER) or "").strip()
    webhook_id = (headers.get(WEBHOOK_ID_HEADER) or "").strip()
    if not webhook_id:
        raise Malformed(f"the {WEBHOOK_ID_HEADER} header is missing", code="missing_webhook_id")
    return platforms.translate_and_apply(session, shop, "shopify", TRANSLATORS, topic, webhook_id, body,
                                         RECEIPT_TOPIC, now)


def _items(line_items: Any) -> list[dict[str, Any]]:
    items = []
    for line in line_items if isinstance(line_items, list) else []:
        if not isinstance(line, dict):
            continue
        title = platforms.text(line.get("title") or line.get("name"), 300)
        variant = platforms.text(line.get("variant_title"), 100)
        if title and variant and variant != DEFAULT_VARIANT:
            title = f"{title} - {variant}"[:300]
        item = {"id": platforms.ref(line.get("variant_id")) or platforms.ref(line.get("product_id")),
                "title": title, "price": platforms.money(line.get("price")),
                "quantity": platforms.count(line.get("quantity"))}
        items.append({k: v for k, v in item.items() if v is not None})
    return items[:MAX_ITEMS]


def _checkout(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    if data.get("completed_at"):
        return [], "the checkout is completed (its order comes as orders/paid)"
    url = platforms.http_url(data.get("abandoned_checkout_url"))
    if url is None:
        return [], "the checkout has no abandoned_checkout_url"
    token = platforms.ref(data.get("token")) or platforms.ref(data.get("id"))
    if token is None:
        return [], "the checkout has no token"
    customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
    billing = data.get("billing_address") if isinstance(data.get("billing_address"), dict) else {}
    items = _items(data.get("line_items"))
    return [platforms.build(CheckoutHook, {
        "id": webhook_id[:128], "checkout_token": token, "cart_token": platforms.ref(data.get("cart_token")),
        "email": platforms.email(data.get("email")) or platforms.email(customer.get("email")),
        "first_name": platforms.text(customer.get("first_name") or billing.get("first_name"), 100),
        "total": platforms.money(data.get("total_price")), "currency": data.get("currency") or shop.currency,
        "item_count": sum(i.get("quantity", 1) for i in items), "checkout_url": url, "items": items,
    })], None


def _order(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    order_id = platforms.ref(data.get("id"))
    if order_id is None:
        return [], "the order has no id"
    customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
    return [platforms.build(OrderHook, {
        "id": webhook_id[:128], "order_id": order_id, "status": "paid",
        "checkout_token": platforms.ref(data.get("checkout_token")),
        "cart_token": platforms.ref(data.get("cart_token")),
        "email": platforms.email(data.get("email")) or platforms.email(customer.get("email")),
        "total": platforms.money(data.get("total_price")), "currency": data.get("currency") or shop.currency,
        "items": _items(data.get("line_items")),
    })], None


def _fulfillment(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    order_id = platforms.ref(data.get("order_id"))
    if order_id is None:
        return [], "the fulfillment has no order_id"
    urls = data.get("tracking_urls") if isinstance(data.get("tracking_urls"), list) else []
    url = platforms.http_url(data.get("tracking_url")) or next(
        (u for u in (platforms.http_url(u) for u in urls) if u), None)
    return [platforms.build(ShipmentHook, {
        # The fulfillment's own id names the shipment (a second delivery of it is not a second shipment).
        "id": "shopify-" + (platforms.ref(data.get("id")) or webhook_id)[:100], "order_id": order_id,
        "tracking_url": url, "carrier": platforms.text(data.get("tracking_company"), 100),
    })], None


def _available(product: dict[str, Any], variant: dict[str, Any]) -> bool:
    """Whether a variant can be bought: its ``available`` flag when sent, else from its stock rules.

    Payloads of API versions before 2024 name untracked stock with ``inventory_management: null``;
    current ones (2026-07) no longer carry the field, only ``inventory_quantity`` and
    ``inventory_policy``: a variant without the field is read as tracked, so stock 0 with policy
    ``deny`` is sold out (reading it as untracked hid every restock).
    """
    if product.get("status") in ("draft", "archived"):
        return False
    if isinstance(variant.get("available"), bool):
        return variant["available"]
    untracked = "inventory_management" in variant and not variant["inventory_management"]
    if untracked or variant.get("inventory_policy") == "continue":
        return True
    quantity = platforms.count(variant.get("inventory_quantity"))
    return quantity is None or quantity > 0


def _product(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    product_id = platforms.ref(data.get("id"))
    title = platforms.text(data.get("title"), 300)
    if product_id is None or title is None:
        return [], "the product has no id or title"
    image = data.get("image") if isinstance(data.get("image"), dict) else None
    images = [i for i in data.get("images") or [] if isinstance(i, dict)] if isinstance(data.get("images"), list) else []
    images_by_id = {i.get("id"): platforms.http_url(i.get("src")) for i in images}
    default_image = platforms.http_url((image or (images[0] if images else {})).get("src"))
    handle = data.get("handle")
    url = (f"{shop.origins[0]}/products/{handle}" if isinstance(handle, str) and re.fullmatch(r"[\w-]{1,200}", handle)
           and shop.origins else None)
    variants = [v for v in data.get("variants") or [] if isinstance(v, dict)] if isinstance(data.get("variants"), list) else []
    payloads = []
    for variant in variants[:MAX_ITEMS]:
        variant_id = platforms.ref(variant.get("id"))
        name = platforms.text(variant.get("title"), 100)
        payloads.append(platforms.build(ProductHook, {
            "id": webhook_id[:128], "product_id": product_id, "variant_id": variant_id,
            "title": f"{title} - {name}"[:300] if name and name != DEFAULT_VARIANT else title,
            "price": platforms.money(variant.get("price")), "currency": shop.currency,
            "available": _available(data, variant), "inventory": platforms.count(variant.get("inventory_quantity")),
            "url": f"{url}?variant={variant_id}" if url and variant_id and len(variants) > 1 else url,
            "image": images_by_id.get(variant.get("image_id")) or default_image,
        }))
    if not payloads:
        return [], "the product has no variants"
    return payloads, None


TRANSLATORS = {
    "checkouts/create": _checkout,
    "checkouts/update": _checkout,
    "orders/paid": _order,
    "fulfillments/create": _fulfillment,
    "products/update": _product,
}


def proxy_signature(secret: str, params: MultiDict[str, str]) -> str:
    """The app proxy's ``signature``: hex HMAC-SHA256 of the sorted ``key=value`` parameters
    (several values of one key joined with commas), without ``signature``, joined with nothing."""
    message = "".join(sorted(f"{key}={','.join(params.getlist(key))}" for key in params if key != "signature"))
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_proxy_signature(secrets: list[str], params: MultiDict[str, str]) -> None:
    """Check an app proxy request's ``signature`` against any of ``secrets``; raises Unauthorized."""
    given = params.get("signature", "")
    if not given or len(given) > 200:
        raise Unauthorized("the app proxy signature is missing", code="bad_signature")
    given_bytes = given.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given_bytes, proxy_signature(secret, params).encode("ascii"))
    if not matched:
        raise Unauthorized("the app proxy signature does not match", code="bad_signature")


def verify_proxy(shop: Shop, params: MultiDict[str, str], *, app_secret: str | None = None) -> None:
    """Check an app proxy request's ``signature`` (and its ``shop`` when a domain is set); raises Unauthorized."""
    verify_proxy_signature(secrets_for(shop, app_secret), params)
    if shop.platform_domain and params.get("shop", "").strip().lower() != shop.platform_domain:
        raise Unauthorized("this request is from another Shopify shop than the one set in the settings",
                           code="wrong_shop_domain")


# The manifest's icons: the app embed passes its icon setting as Shopify's image URLs
# (``image_url``, at 192 and 512 px); only Shopify's CDN and the shop's own hosts are taken.
MANIFEST_ICON_SIZES = (192, 512)
SHOPIFY_CDN = "cdn.shopify.com"
SHORT_NAME = 12  # what a Home Screen label shows without cutting
_THEME_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _short_name(name: str) -> str:
    """``name`` cut to ``SHORT_NAME`` characters at a word's end where it has one."""
    if len(name) <= SHORT_NAME:
        return name
    cut = name[:SHORT_NAME + 1].rsplit(" ", 1)[0].strip()
    return cut if cut and len(cut) <= SHORT_NAME else name[:SHORT_NAME].strip()


def _icon_url(shop: Shop, value: str | None) -> str | None:
    """An icon URL the embed passed, made absolute (Shopify writes ``//host/...``), when it is
    https on Shopify's CDN or on one of the shop's own hosts; None otherwise."""
    if not value:
        return None
    url = platforms.http_url("https:" + value if value.startswith("//") else value)
    if url is None or not url.startswith("https://"):
        return None
    hosts = {SHOPIFY_CDN, shop.platform_domain or ""} | {urlsplit(o).hostname or "" for o in shop.origins or []}
    return url if urlsplit(url).hostname in hosts - {""} else None


def storefront_manifest(shop: Shop, params: Mapping[str, str]) -> dict[str, Any]:
    """The web app manifest served through the app proxy: the shop's name, its own window
    (``display: standalone``, what iOS needs for a Home Screen app), the storefront's home as
    start, the soft-ask's colour as theme colour and the icons the embed passed (``icon_192``,
    ``icon_512``) when they are usable."""
    name = (shop.name or "").strip() or (shop.platform_domain or "Shop")
    color = (shop.prompt or {}).get("color")
    manifest: dict[str, Any] = {"name": name, "short_name": _short_name(name), "start_url": "/", "scope": "/",
                                "display": "standalone", "background_color": "#ffffff"}
    if isinstance(color, str) and _THEME_COLOR.match(color):
        manifest["theme_color"] = color
    icons = [{"src": url, "sizes": f"{size}x{size}"} for size in MANIFEST_ICON_SIZES
             if (url := _icon_url(shop, params.get(f"icon_{size}")))]
    if icons:
        manifest["icons"] = icons
    return manifest
