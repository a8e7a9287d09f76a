"""Shops on a platform: Shopify's and WooCommerce's webhooks as they send them, and the worker
file and the web app manifest through Shopify's app proxy (``/v1/integrations/...``)."""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, request

from server.core.embed import worker_source
from server.core.clock import get_clock
from server.core.db import get_db, get_session
from server.core.errors import ApiError
from server.core.models import Shop
from server.webhooks import shopify, status, woocommerce
from server.core.shops import shop_by_public_key

bp = Blueprint("integrations", __name__, url_prefix="/v1/integrations")


@bp.before_request
def _body_limit() -> None:
    # A platform's order or product (descriptions, many variants) may be larger than the
    # collect API's bodies.
    request.max_content_length = current_app.config["PLATFORM_MAX_CONTENT_LENGTH"]


def _deliver(source: str, handle: Callable[..., dict[str, Any]], shop: Shop) -> tuple[dict[str, Any], int]:
    """Run one platform's handler, noting the delivery as accepted or refused for the connection check."""
    now = get_clock().now()
    try:
        result = handle(get_session(), shop, request.headers, request.get_data(cache=True), now)
    except ApiError as error:
        status.note_failure(get_db().sessionmaker, shop.id, source, error.code, error.message, now)
        raise
    status.note_delivery(get_session(), shop.id, source, now)
    return result, 200


def _app_secret() -> str | None:
    return current_app.config["SHOPIFY_CLIENT_SECRET"]


@bp.post("/shopify/<public_key>")
def shopify_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A Shopify webhook delivery: verified over the raw body, then translated and applied."""
    shop = shop_by_public_key(get_session(), public_key)
    return _deliver("shopify", partial(shopify.handle, app_secret=_app_secret()), shop)


@bp.post("/shopify")
def shopify_app_webhook() -> tuple[dict[str, Any], int]:
    """A delivery of the operator's Shopify app (one URL for every shop): signed with the app's
    client secret, then given to the shop of its ``X-Shopify-Shop-Domain``."""
    shopify.verify_app_delivery(_app_secret(), request.headers, request.get_data(cache=True))
    shop = shopify.shop_by_domain(get_session(), request.headers.get(shopify.DOMAIN_HEADER))
    return _deliver("shopify", partial(shopify.handle, verified=True), shop)


@bp.post("/woocommerce/<public_key>")
def woocommerce_webhook(public_key: str) -> tuple[dict[str, Any], int]:
    """A WooCommerce webhook delivery (or its first, unsigned ping)."""
    return _deliver("woocommerce", woocommerce.handle, shop_by_public_key(get_session(), public_key))


@bp.get("/shopify/<public_key>/proxy/pushcart-sw.js")
def shopify_proxy_worker(public_key: str) -> Response:
    """The one-line service worker, served on the shop's origin through Shopify's app proxy."""
    shop = shop_by_public_key(get_session(), public_key)
    shopify.verify_proxy(shop, request.args, app_secret=_app_secret())
    return _worker()


@bp.get("/shopify/proxy/pushcart-sw.js")
def shopify_app_proxy_worker() -> Response:
    """The worker through the operator app's proxy (one proxy URL for every shop): signed with the
    app's client secret, for a shop Pushcart knows by the proxy's ``shop`` parameter."""
    shopify.verify_app_proxy(_app_secret(), request.args)
    shopify.shop_by_domain(get_session(), request.args.get("shop"))
    return _worker()


@bp.get("/shopify/<public_key>/proxy/manifest.webmanifest")
def shopify_proxy_manifest(public_key: str) -> Response:
    """The shop's web app manifest, served on the shop's origin through Shopify's app proxy."""
    shop = shop_by_public_key(get_session(), public_key)
    shopify.verify_proxy(shop, request.args, app_secret=_app_secret())
    return _manifest(shop)


@bp.get("/shopify/proxy/manifest.webmanifest")
def shopify_app_proxy_manifest() -> Response:
    """The manifest through the operator app's proxy, which the app embed links: signed with the
    app's client secret, for the shop of the proxy's ``shop`` parameter."""
    shopify.verify_app_proxy(_app_secret(), request.args)
    return _manifest(shopify.shop_by_domain(get_session(), request.args.get("shop")))


def _manifest(shop: Shop) -> Response:
    body = json.dumps(shopify.storefront_manifest(shop, request.args), ensure_ascii=False)
    return Response(body, mimetype="application/manifest+json", headers={"Cache-Control": "public, max-age=300"})


def _worker() -> Response:
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    return Response(source, mimetype="text/javascript", headers={"Cache-Control": "public, max-age=300"})
