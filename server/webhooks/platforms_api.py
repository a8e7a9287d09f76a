"""Shops on a platform: Shopify's and WooCommerce's webhooks as they send them, and the worker
file through Shopify's app proxy (``/v1/integrations/...``)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from server.core.embed import worker_source
from server.core.clock import get_clock
from server.core.db import get_session
from server.webhooks import shopify, woocommerce
from server.core.shops import shop_by_public_key

bp = Blueprint("integrations", __name__, url_prefix="/v1/integrations")


@bp.before_request
def _body_limit() -> None:
    # A platform's order or product (descriptions, many variants) may be larger than the
    # collect API's bodies.
    request.max_content_length = current_app.config["PLATFORM_MAX_CONTENT_LENGTH"]


@bp.post("/shopify/<public_key>")
def shopify_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A Shopify webhook delivery: verified over the raw body, then translated and applied."""
    shop = shop_by_public_key(get_session(), public_key)
    return shopify.handle(get_session(), shop, request.headers, request.get_data(cache=True),
                          get_clock().now()), 200


@bp.post("/woocommerce/<public_key>")
def woocommerce_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A WooCommerce webhook delivery (or its first, unsigned ping)."""
    shop = shop_by_public_key(get_session(), public_key)
    return woocommerce.handle(get_session(), shop, request.headers, request.get_data(cache=True),
                              get_clock().now()), 200


@bp.get("/shopify/<public_key>/proxy/pushcart-sw.js")
def shopify_proxy_worker(public_key: str) -> Response:
    """The one-line service worker, served on the shop's origin through Shopify's app proxy."""
    shop = shop_by_public_key(get_session(), public_key)
    shopify.verify_proxy(shop, request.args)
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    return Response(source, mimetype="text/javascript", headers={"Cache-Control": "public, max-age=300"})
