"""The merchant API (``Authorization: Bearer <admin_token>``), scoped to the token's shop."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import Invalid, Unauthorized
from server.core.models import Shop
from server.merchant.presets import list_presets, update_preset
from server.merchant.records import list_pushes, list_visitors, read_cursor, read_page
from server.core.shops import shop_by_admin_token, shop_cache
from server.merchant.shops import SettingsUpdate, settings_as_json, update_settings, without_read_only
from server.merchant.guardrails import guardrails
from server.merchant.stats import compute_stats, parse_range
from server.core.validation import parse, read_json

bp = Blueprint("admin_api", __name__, url_prefix="/v1/admin")

def current_shop() -> Shop:
    """The shop authenticated for this request."""
    return g.shop


def authenticate_bearer() -> Shop:
    """The shop whose admin token the request carries; raises Unauthorized."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    shop = shop_by_admin_token(get_session(), token.strip()) if scheme.lower() == "bearer" else None
    if shop is None:
        raise Unauthorized("a valid admin token is needed: Authorization: Bearer <admin_token>",
                           headers={"WWW-Authenticate": 'Bearer realm="pushcart"'})
    return shop


@bp.before_request
def _authenticate() -> None:
    g.shop = authenticate_bearer()


@bp.get("/settings")
def get_settings() -> dict[str, Any]:
    """The shop's settings."""
    return settings_as_json(current_shop())


@bp.put("/settings")
def put_settings() -> dict[str, Any]:
    """Change the shop's settings (partial update; what ``GET`` gave, sent back whole, is accepted)."""
    update = parse(SettingsUpdate, without_read_only(current_shop(), read_json(request)))
    shop = update_settings(current_shop(), update)
    shop_cache(current_app).forget(shop.public_key)
    return settings_as_json(shop)


@bp.get("/events")
def list_events() -> Any:
    """The five preset kinds with their switch, timing and templates."""
    return jsonify(list_presets(get_session(), current_shop()))


@bp.put("/events/<kind>")
def put_event(kind: str) -> dict[str, Any]:
    """Change one preset kind (partial update); templates are checked on save."""
    return update_preset(get_session(), current_shop(), kind, read_json(request), get_clock().now())


@bp.get("/stats")
def get_stats() -> dict[str, Any]:
    """The shop's figures over ``from``..``to`` (UTC days, both included; default the last 30 days)."""
    rng = parse_range(request.args.get("from"), request.args.get("to"), get_clock().now())
    figures = compute_stats(get_session(), current_shop().id, rng)
    figures["currency"] = current_shop().currency
    figures["guardrails"] = guardrails(get_session(), current_shop(), figures["by_kind"], get_clock().now())
    return figures


@bp.get("/pushes")
def get_pushes() -> dict[str, Any]:
    """Push records, newest first, filterable by ``kind``, ``status`` and ``visitor``; by ``page``
    or by ``cursor`` (a page's ``next``)."""
    args = request.args
    return list_pushes(get_session(), current_shop().id, kind=args.get("kind") or None,
                       status=args.get("status") or None, visitor_key=args.get("visitor") or None,
                       page=read_page(args.get("page")), cursor=read_cursor(args.get("cursor"))).as_json()


@bp.get("/visitors")
def get_visitors() -> dict[str, Any]:
    """Visitor records, newest first; ``subscribed=1|0`` filters; by ``page`` or by ``cursor``."""
    raw = request.args.get("subscribed", "")
    if raw not in ("", "0", "1", "true", "false"):
        raise Invalid("subscribed must be 1 or 0", code="invalid_field")
    subscribed = None if raw == "" else raw in ("1", "true")
    return list_visitors(get_session(), current_shop().id, subscribed=subscribed,
                         page=read_page(request.args.get("page")),
                         cursor=read_cursor(request.args.get("cursor"))).as_json()
