"""The public collect API, called by the widget from the shop's own origins.

CORS is per shop: the public key in the path names the shop, and only the shop's registered
origins get ``Access-Control-Allow-Origin``. A request carrying another ``Origin`` is refused
with 403 before anything is read or stored; a request without ``Origin`` (a server, curl) is
allowed. ``text/plain`` bodies holding JSON are accepted for ``navigator.sendBeacon``.

The shop behind a public key is read from a per-process cache (``ShopCache``). Event batches
are appended to this process's journal and answered at once; ``server.collect.journal`` drains them
into the database in groups (one write path, on SQLite and PostgreSQL alike).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from server.core.clock import get_clock
from server.core.db import get_db, get_session
from server.core.errors import ApiError, NotFound, TooLarge
from server.collect import refused_origins
from server.collect.journal import JournalFull, event_journal
from server.core.limits import count_new_subscription
from server.core.models import Shop
from server.core.shops import DEFAULT_PROMPT, ShopRef, normalize_origin, shop_cache
from server.collect.subscriptions import SubscribeIn, UnsubscribeIn, unsubscribe, upsert_subscription
from server.collect.events import MAX_EVENTS_PER_BATCH, EventBatch
from server.collect.onsite import could_load, path_of, preview_message_id, without_preview
from server.collect import softask
from server.collect.prompt import localized_prompt
from server.core.validation import parse, read_json
from server.delivery.push.vapid import get_vapid, public_key_b64

bp = Blueprint("collect", __name__, url_prefix="/v1/shops")

PREFLIGHT_MAX_AGE = "600"


class ForbiddenOrigin(ApiError):
    status, code = 403, "forbidden_origin"


class Busy(ApiError):
    status, code = 503, "busy"


BUSY_RETRY_AFTER = 5  # seconds


def _allowed_origin(origins: frozenset[str], origin: str) -> bool:
    try:
        return normalize_origin(origin) in origins
    except ApiError:
        return False  # "null" (sandboxed frames, file://) and other non-URLs


def _shop_ref(public_key: str) -> ShopRef:
    """The shop behind a public key, from this process's cache; raises NotFound."""
    return shop_cache(current_app).get(get_session, public_key)


@bp.before_request
def _shop_and_origin() -> Response | None:
    """Find the shop in the path and check the caller's origin (preflights are answered here)."""
    public_key = (request.view_args or {}).get("public_key", "")
    shop = _shop_ref(public_key)
    origin = request.headers.get("Origin")
    if origin is not None and not _allowed_origin(shop.origins, origin):
        refused_origins.note_refusal(current_app, get_db().sessionmaker, shop.id, shop.public_key, origin,
                                     get_clock().now())
        raise ForbiddenOrigin(f"the origin {refused_origins.displayable(origin)} is not one of the shop's origins: "
                              "add it on the dashboard (Install, or Settings → Shop origins)")
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
    if origin is None and response.status_code == 429:
        origin = _origin_if_allowed()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    vary = response.headers.get("Vary")  # (cheaper than parsing it into response.vary)
    if not vary:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"
    return response


def _origin_if_allowed() -> str | None:
    """The caller's origin when it is the shop's, for an answer given before ``_shop_and_origin`` ran.

    The rate limiter refuses before the blueprint's own checks; the widget must still be able
    to read that 429 (and its Retry-After) from the shop's page.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        shop = _shop_ref((request.view_args or {}).get("public_key", ""))
    except ApiError:
        return None
    return origin if _allowed_origin(shop.origins, origin) else None


def _body(model: type[Any]) -> Any:
    return parse(model, read_json(request, allow_text_plain=True))


def _shop() -> Shop:
    """The shop of this call as a row (the subscription calls plan pushes with it)."""
    shop = get_session().get(Shop, g.collect_shop.id)
    if shop is None:
        raise NotFound("unknown shop", code="unknown_shop")
    return shop


@bp.route("/<public_key>/config", methods=["GET", "OPTIONS"])
def config(public_key: str) -> dict[str, Any]:
    """What the widget needs to ask and subscribe: the VAPID key (the shop's current one; a
    widget whose subscription was made with another re-subscribes with it), the prompt (in the visitor's
    ``?locale=`` when the shop or the built-in labels have it, with its ``html`` and ``css`` rendered
    by ``server.collect.softask``), the worker path, and the shop's platform (on ``shopify`` the widget reads /cart.js and sends ``cart_update``).

    With ``?page=<path>``, ``onsite`` is the on-site script's URL when the shop has an active
    on-site message whose page rule can match that page (``server.collect.onsite.could_load``, from
    the shop cache: a change of messages reaches other processes within ``SHOP_CACHE_SECONDS``),
    so the widget loads that script only then, or when the page carries a valid preview token of
    this shop (``?pushcart_preview=``, the test push of an on-site message)."""
    shop = g.collect_shop
    page = request.args.get("page")
    prompt = localized_prompt({**DEFAULT_PROMPT, **(shop.prompt or {})}, request.args.get("locale", "")[:35])
    answer = {
        "vapid_public_key": shop.vapid_public_key or public_key_b64(get_vapid(current_app)),
        # The designed soft-ask as markup and style: the widget only inserts and wires it.
        "prompt": {**prompt, **softask.render(prompt)},
        "sw_path": shop.sw_path,
        "platform": shop.platform,
    }
    if page is not None and (
            could_load(shop.onsite_pages, path_of(without_preview(page[:2048])))
            or preview_message_id(current_app.secret_key, shop.public_key, page[:2048], get_clock().now()) is not None):
        answer["onsite"] = f"{current_app.config['PUBLIC_URL']}/onsite.js?shop={shop.public_key}"
    return answer


@bp.route("/<public_key>/subscriptions", methods=["POST", "OPTIONS"])
def subscribe(public_key: str) -> tuple[dict[str, Any], int]:
    """Store a push subscription: 201 when new, 200 when the endpoint is already known."""
    data = _body(SubscribeIn)
    shop = _shop()
    result = upsert_subscription(get_session(), shop, data, current_app.config, get_clock().now(),
                                 before_new=lambda: count_new_subscription(shop.public_key),
                                 instance_key=public_key_b64(get_vapid(current_app)))
    return {"subscription_id": result.subscription.id}, 201 if result.created else 200


@bp.route("/<public_key>/subscriptions", methods=["DELETE"])
def unsubscribe_endpoint(public_key: str) -> tuple[str, int]:
    """Stop pushes to this endpoint (204 whether or not it was known: the answer reveals nothing)."""
    data = _body(UnsubscribeIn)
    unsubscribe(get_session(), _shop(), data.endpoint, get_clock().now())
    return "", 204


@bp.route("/<public_key>/events", methods=["POST", "OPTIONS"])
def events(public_key: str) -> Response:
    """Record a batch of at most 50 events (more is 413); a repeated event id is stored once.

    202 ``{"accepted"}`` once the batch is in this process's journal on local disk (its drainer
    stores it in the database just after, on SQLite and PostgreSQL alike), or 503 ``busy``
    when the journal is full or its disk refuses the write.
    """
    raw = read_json(request, allow_text_plain=True)
    if isinstance(raw, dict) and isinstance(raw.get("events"), list) and len(raw["events"]) > MAX_EVENTS_PER_BATCH:
        raise TooLarge(f"at most {MAX_EVENTS_PER_BATCH} events per request", code="too_many_events")
    batch = parse(EventBatch, raw)
    g.events_accepted = len(batch.events)
    try:
        event_journal(current_app).append(g.collect_shop.id, get_clock().now(), batch)
    except JournalFull as full:
        raise Busy(f"events cannot be kept right now: {full}",
                   headers={"Retry-After": str(BUSY_RETRY_AFTER)}) from None
    # The service's most frequent answer, built without the JSON encoder.
    return current_app.response_class(b'{"accepted":%d}\n' % len(batch.events), 202,
                                      mimetype="application/json")
