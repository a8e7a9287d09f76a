"""The public collect API, called by the widget from the shop's own origins.

CORS is per shop: the public key in the path names the shop, and only the shop's registered
origins get ``Access-Control-Allow-Origin``. A request carrying another ``Origin`` is refused
with 403 before anything is read or stored; a request without ``Origin`` (a server, curl) is
allowed. ``text/plain`` bodies holding JSON are accepted for ``navigator.sendBeacon``.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from .. import get_clock
from ..db import get_session
from ..errors import ApiError, TooLarge
from ..services.shops import DEFAULT_PROMPT, normalize_origin, shop_by_public_key
from ..services.subscriptions import SubscribeIn, UnsubscribeIn, unsubscribe, upsert_subscription
from ..services.tracking import MAX_EVENTS_PER_BATCH, EventBatch, record_events
from ..validation import parse, read_json
from ..vapid import get_vapid, public_key_b64

bp = Blueprint("collect", __name__, url_prefix="/v1/shops")

PREFLIGHT_MAX_AGE = "600"


class ForbiddenOrigin(ApiError):
    status, code = 403, "forbidden_origin"


def _allowed_origin(origins: list[str], origin: str) -> bool:
    try:
        return normalize_origin(origin) in origins
    except ApiError:
        return False  # "null" (sandboxed frames, file://) and other non-URLs


@bp.before_request
def _shop_and_origin() -> Response | None:
    """Find the shop in the path and check the caller's origin (preflights are answered here)."""
    public_key = (request.view_args or {}).get("public_key", "")
    shop = shop_by_public_key(get_session(), public_key)
    origin = request.headers.get("Origin")
    if origin is not None and not _allowed_origin(list(shop.origins or []), origin):
        raise ForbiddenOrigin("this origin is not one of the shop's origins")
    g.collect_shop = shop
    g.cors_origin = origin
    if request.method == "OPTIONS":
        response = current_app.make_response(("", 204))
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response
    return None


@bp.after_request
def _cors_headers(response: Response) -> Response:
    """Let the shop's own pages read the answer (errors included)."""
    origin = g.get("cors_origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")
    return response


def _body(model: type[Any]) -> Any:
    return parse(model, read_json(request, allow_text_plain=True))


@bp.route("/<public_key>/config", methods=["GET", "OPTIONS"])
def config(public_key: str) -> dict[str, Any]:
    """What the widget needs to ask and subscribe: the VAPID key, the prompt, the worker path."""
    shop = g.collect_shop
    return {
        "vapid_public_key": public_key_b64(get_vapid(current_app)),
        "prompt": {**DEFAULT_PROMPT, **(shop.prompt or {})},
        "sw_path": shop.sw_path,
    }


@bp.route("/<public_key>/subscriptions", methods=["POST", "OPTIONS"])
def subscribe(public_key: str) -> tuple[dict[str, Any], int]:
    """Store a push subscription: 201 when new, 200 when the endpoint is already known."""
    data = _body(SubscribeIn)
    result = upsert_subscription(get_session(), g.collect_shop, data, current_app.config, get_clock().now())
    return {"subscription_id": result.subscription.id}, 201 if result.created else 200


@bp.route("/<public_key>/subscriptions", methods=["DELETE"])
def unsubscribe_endpoint(public_key: str) -> tuple[str, int]:
    """Stop pushes to this endpoint (204 whether or not it was known: the answer reveals nothing)."""
    data = _body(UnsubscribeIn)
    unsubscribe(get_session(), g.collect_shop, data.endpoint, get_clock().now())
    return "", 204


@bp.route("/<public_key>/events", methods=["POST", "OPTIONS"])
def events(public_key: str) -> tuple[dict[str, Any], int]:
    """Record a batch of at most 50 events (more is 413); a repeated event id is stored once."""
    raw = read_json(request, allow_text_plain=True)
    if isinstance(raw, dict) and isinstance(raw.get("events"), list) and len(raw["events"]) > MAX_EVENTS_PER_BATCH:
        raise TooLarge(f"at most {MAX_EVENTS_PER_BATCH} events per request", code="too_many_events")
    batch = parse(EventBatch, raw)
    stored = record_events(get_session(), g.collect_shop, batch, get_clock().now())
    return {"accepted": len(batch.events), "stored": len(stored)}, 202
