"""The admin API's shop routes: settings, presets, stats and records (behind ``doors.api``'s Bearer guard)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import Invalid
from server.merchant import connection, install_check
from server.merchant.connect import issue_token
from server.merchant.presets import list_presets
from server.reports.records import list_pushes, list_visitors, read_cursor, read_page, read_push_filter
from server.merchant.shop_admin import (SettingsUpdate, rotate_secret, settings_as_json, update_settings,
                                   without_read_only)
from server.reports.guardrails import guardrails
from server.merchant import audit
from server.merchant.doors import csv_response, current_actor, current_shop
from server.reports.stats import compute_stats, parse_range
from server.core.validation import parse, read_json

bp = Blueprint("shop", __name__)


@bp.get("/settings")
def get_settings() -> dict[str, Any]:
    """The shop's settings."""
    return settings_as_json(current_shop())


@bp.put("/settings")
def put_settings() -> dict[str, Any]:
    """Change the shop's settings (partial update; what ``GET`` gave, sent back whole, is accepted)."""
    update = parse(SettingsUpdate, without_read_only(current_shop(), read_json(request)))
    with audit.settings_change(get_session(), current_shop(), current_actor(), get_clock().now()):
        shop = update_settings(current_shop(), update)
    return settings_as_json(shop)


@bp.get("/events")
def list_events() -> Any:
    """The five preset kinds with their switch, timing and templates."""
    return jsonify(list_presets(get_session(), current_shop()))


@bp.put("/events/<kind>")
def put_event(kind: str) -> dict[str, Any]:
    """Change one preset kind (partial update); templates are checked on save."""
    return audit.preset_change(get_session(), current_shop(), kind, read_json(request), current_actor(),
                               get_clock().now())


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
    """Push records, newest first, filterable by ``kind``, ``status``, ``visitor``, ``campaign``,
    ``from``/``to`` (UTC days) and ``q`` (a visitor id or part of the title); by ``page`` or by
    ``cursor`` (a page's ``next``)."""
    args = request.args
    return list_pushes(get_session(), current_shop().id, wanted=read_push_filter(args),
                       page=read_page(args.get("page")), cursor=read_cursor(args.get("cursor"))).as_json()


@bp.get("/pushes.csv")
def get_pushes_csv() -> Response:
    """Every push record the same filters select, as CSV (streamed)."""
    return csv_response(current_shop(), read_push_filter(request.args))


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


@bp.post("/secret/rotate")
def post_secret_rotate() -> dict[str, Any]:
    """A new webhook secret for the shop; the one before stays valid for 24 hours."""
    with audit.settings_change(get_session(), current_shop(), current_actor(), get_clock().now()):
        rotated = rotate_secret(current_shop(), get_clock().now())
    return rotated.as_json(current_shop().public_key)


@bp.get("/connection")
def get_connection() -> dict[str, Any]:
    """The connection check: refused origins, the worker file on each origin, the last event and
    webhook deliveries, and each problem's fix."""
    shop = current_shop()
    public_url = current_app.config["PUBLIC_URL"]
    return connection.check(get_session(), shop, get_clock().now(),
                            lambda origin: install_check.check_service_worker(shop, origin, public_url))


@bp.post("/connect-token")
def post_connect_token() -> tuple[dict[str, Any], int]:
    """A one-time connect value for a plugin (valid one hour; a new one replaces the one before)."""
    issued = issue_token(current_shop(), get_clock().now(), current_app.config["PUBLIC_URL"])
    return issued.as_json(), 201
