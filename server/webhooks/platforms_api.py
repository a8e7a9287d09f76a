"""Shops on a platform: Shopify's and WooCommerce's webhooks as they send them, and the worker
file through Shopify's app proxy (``/v1/integrations/...``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from server.core.embed import worker_source
from server.core.clock import get_clock
from server.core.db import get_db, get_session
from server.core.errors import ApiError
from server.webhooks import shopify, status, woocommerce
from server.core.shops import shop_by_public_key

bp = Blueprint("integrations", __name__, url_prefix="/v1/integrations")


@bp.before_request
def _body_limit() -> None:
    # A platform's order or product (descriptions, many variants) may be larger than the
    # collect API's bodies.
    request.max_content_length = current_app.config["PLATFORM_MAX_CONTENT_LENGTH"]


def _deliver(source: str, handle: Callable[..., dict[str, Any]], public_key: str) -> tuple[dict[str, Any], int]:
    """Run one platform's handler, noting the delivery as accepted or refused for the connection check."""
    shop = shop_by_public_key(get_session(), public_key)
    now = get_clock().now()
    try:
        result = handle(get_session(), shop, request.headers, request.get_data(cache=True), now)
    except ApiError as error:
        status.note_failure(get_db().sessionmaker, shop.id, source, error.code, error.message, now)
        raise
    status.note_delivery(get_session(), shop.id, source, now)
    return result, 200


@bp.post("/shopify/<public_key>")
def shopify_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A Shopify webhook delivery: verified over the raw body, then translated and applied."""
    return _deliver("shopify", shopify.handle, public_key)


@bp.post("/woocommerce/<public_key>")
def woocommerce_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A WooCommerce webhook delivery (or its first, unsigned ping)."""
    return _deliver("woocommerce", woocommerce.handle, public_key)


@bp.get("/shopify/<public_key>/proxy/pushcart-sw.js")
def shopify_proxy_worker(public_key: str) -> Response:
    """The one-line service worker, served on the shop's origin through Shopify's app proxy."""
    shop = shop_by_public_key(get_session(), public_key)
    shopify.verify_proxy(shop, request.args)
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    return Response(source, mimetype="text/javascript", headers={"Cache-Control": "public, max-age=300"})
