"""WooCommerce's webhooks as they are.

Deliveries: ``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body with the webhook's
secret: the shop's webhook ``secret``, the one the plugin's page asks for and makes the webhooks
with, its previous one during a rotation, or the shop's ``platform_secret`` when one was set by
hand), ``X-WC-Webhook-Topic``, ``X-WC-Webhook-ID`` and
``X-WC-Webhook-Delivery-ID`` (together they name a delivery: a repeat changes nothing) and
``X-WC-Webhook-Source`` (must be the shop's site URL when one is set). WooCommerce's first
delivery of a new webhook is an unsigned ping (form-encoded ``webhook_id=<n>``): it gets 200
and stores nothing, or WooCommerce would not save the webhook.

| topic | becomes |
| --- | --- |
| ``order.created``, ``order.updated``, status ``processing`` or ``completed`` | an ``orders`` hook (paid); the order key is its checkout token |
| the same, status ``pending``, ``on-hold`` or ``failed`` with line items | a ``checkouts`` hook: the order key as token, ``checkout_payment_url`` or ``payment_url`` as link |
| the same, status ``cancelled``, ``refunded`` (or any other) | ignored |
| ``product.updated`` | a ``products`` hook per product and per variation sent with it |

The visitor comes from the order's ``meta_data`` (``_pushcart_visitor_id``, ``_pushcart_cart_token``,
stored by the companion WordPress plugin), then from the billing email.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import orm

from server.core.errors import Unauthorized
from server.core.models import Shop
from server.core.shops import webhook_secrets
from server.webhooks import platforms
from server.core.visitors import VISITOR_ID_PATTERN
from server.webhooks.native import CheckoutHook, OrderHook, ProductHook

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
WEBHOOK_ID_HEADER = "X-WC-Webhook-ID"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"
SOURCE_HEADER = "X-WC-Webhook-Source"
RECEIPT_TOPIC = "woocommerce"
PING = re.compile(rb"^webhook_id=\d{1,20}$")
PAID = ("processing", "completed")
RECOVERABLE = ("pending", "on-hold", "failed")
VISITOR_META = "_pushcart_visitor_id"
CART_META = "_pushcart_cart_token"
MAX_ITEMS = 100


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """WooCommerce's unsigned test delivery sent when a webhook is saved."""
    return not headers.get(SIGNATURE_HEADER) and PING.match(body.strip()) is not None


def handle(session: orm.Session, shop: Shop, headers: Mapping[str, str], body: bytes,
           now: datetime) -> dict[str, Any]:
    """Verify and apply one WooCommerce delivery; return the response body.

    Raises Unauthorized (no secret, bad signature, another site), Malformed (not JSON) or
    Invalid (a field Pushcart keeps is unusable).
    """
    if is_ping(headers, body):
        platforms.ignored("woocommerce", shop, "ping", "the webhook's test delivery")
        return {"received": True, "ping": True}
    # The shop's own webhook secret is what the plugin's page asks for (and makes the webhooks
    # with); a platform_secret set by hand before keeps working beside it.
    keys = webhook_secrets(shop, now) + ([shop.platform_secret] if shop.platform_secret else [])
    platforms.verify_base64_hmac(keys, SIGNATURE_HEADER, headers.get(SIGNATURE_HEADER), body)
    if shop.platform_domain:
        source = headers.get(SOURCE_HEADER) or ""
        if platforms.normalize_site(source) != platforms.normalize_site(shop.platform_domain):
            raise Unauthorized("this delivery is from another site than the one set in the settings",
                               code="wrong_shop_domain")
    topic = (headers.get(TOPIC_HEADER) or "").strip()
    webhook_id = f"{(headers.get(WEBHOOK_ID_HEADER) or '').strip()}:{(headers.get(DELIVERY_ID_HEADER) or '').strip()}"
    # Without ids to tell deliveries apart, the body's digest names the delivery (the native
    # effects are idempotent per order and checkout anyway).
    receipt_id = f"body:{platforms.body_digest(body)}" if webhook_id == ":" else None
    return platforms.translate_and_apply(session, shop, "woocommerce", TRANSLATORS, topic, webhook_id, body,
                                         RECEIPT_TOPIC, now, receipt_id)


def _meta(data: dict[str, Any], key: str) -> str | None:
    for entry in data.get("meta_data") or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return platforms.ref(entry.get("value"))
    return None


def _visitor_key(value: str | None) -> str | None:
    """The widget's visitor id from the order meta; an odd value is dropped (the email still links)."""
    return value if value is not None and re.fullmatch(VISITOR_ID_PATTERN, value) else None


def _items(line_items: Any) -> list[dict[str, Any]]:
    items = []
    for line in line_items if isinstance(line_items, list) else []:
        if not isinstance(line, dict):
            continue
        item = {"id": platforms.ref(line.get("variation_id")) or platforms.ref(line.get("product_id")),
                "title": platforms.text(line.get("name"), 300), "price": platforms.money(line.get("price")),
                "quantity": platforms.count(line.get("quantity"))}
        image = line.get("image") if isinstance(line.get("image"), dict) else {}
        if platforms.http_url(image.get("src")):
            item["image"] = platforms.http_url(image.get("src"))
        items.append({k: v for k, v in item.items() if v is not None})
    return items[:MAX_ITEMS]


def _order(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    order_id = platforms.ref(data.get("id"))
    status = data.get("status")
    if order_id is None:
        return [], "the order has no id"
    token = platforms.ref(data.get("order_key")) or order_id
    billing = data.get("billing") if isinstance(data.get("billing"), dict) else {}
    common = {
        "id": webhook_id[:128], "checkout_token": token, "visitor_id": _visitor_key(_meta(data, VISITOR_META)),
        "cart_token": _meta(data, CART_META), "email": platforms.email(billing.get("email")),
        "total": platforms.money(data.get("total")), "currency": data.get("currency") or shop.currency,
    }
    items = _items(data.get("line_items"))
    if status in PAID:
        return [platforms.build(OrderHook, {**common, "order_id": order_id, "status": "paid", "items": items})], None
    if status in RECOVERABLE:
        if not items:
            return [], f"the {status} order has no line items"
        url = platforms.http_url(data.get("checkout_payment_url")) or platforms.http_url(data.get("payment_url"))
        if url is None:
            return [], f"the {status} order has no checkout_payment_url or payment_url"
        return [platforms.build(CheckoutHook, {
            **common, "first_name": platforms.text(billing.get("first_name"), 100),
            "item_count": sum(i.get("quantity", 1) for i in items), "checkout_url": url, "items": items,
        })], None
    return [], f"order status {status!r} is not used"


def _product_fields(shop: Shop, data: dict[str, Any]) -> dict[str, Any]:
    price = (platforms.money(data.get("price")) or platforms.money(data.get("sale_price"))
             or platforms.money(data.get("regular_price")))
    images = [i for i in data.get("images") or [] if isinstance(i, dict)] if isinstance(data.get("images"), list) else []
    image = data.get("image") if isinstance(data.get("image"), dict) else (images[0] if images else {})
    stock = data.get("stock_status")
    return {
        "price": price, "currency": shop.currency,
        "available": stock in ("instock", "onbackorder") if isinstance(stock, str) else bool(data.get("purchasable", True)),
        "inventory": platforms.count(data.get("stock_quantity")),
        "url": platforms.http_url(data.get("permalink")), "image": platforms.http_url(image.get("src")),
    }


def _product(shop: Shop, webhook_id: str, data: dict[str, Any]) -> tuple[list[Any], str | None]:
    product_id = platforms.ref(data.get("id"))
    title = platforms.text(data.get("name"), 300)
    if product_id is None or title is None:
        return [], "the product has no id or name"
    if data.get("type") == "variation" and platforms.ref(data.get("parent_id")):
        # A variation delivered on its own: a variant of its parent.
        return [platforms.build(ProductHook, {
            "id": webhook_id[:128], "product_id": platforms.ref(data.get("parent_id")), "variant_id": product_id,
            "title": title, **_product_fields(shop, data)})], None
    payloads = [platforms.build(ProductHook, {"id": webhook_id[:128], "product_id": product_id, "title": title,
                                              **_product_fields(shop, data)})]
    # ``variations`` is a list of ids in WooCommerce's own payload; a plugin may send them whole.
    for variation in [v for v in data.get("variations") or [] if isinstance(v, dict)][:MAX_ITEMS]:
        variation_id = platforms.ref(variation.get("id"))
        if variation_id is None:
            continue
        attributes = [platforms.text(a.get("option"), 50) for a in variation.get("attributes") or []
                      if isinstance(a, dict)]
        name = platforms.text(variation.get("name"), 300) or " - ".join([title, *filter(None, attributes)])[:300]
        payloads.append(platforms.build(ProductHook, {
            "id": webhook_id[:128], "product_id": product_id, "variant_id": variation_id, "title": name,
            **{**_product_fields(shop, data), **{k: v for k, v in _product_fields(shop, variation).items()
                                                 if v is not None}}}))
    return payloads, None


TRANSLATORS = {
    "order.created": _order,
    "order.updated": _order,
    "product.updated": _product,
}
