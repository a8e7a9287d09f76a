"""The merchant API for on-site messages (``Authorization: Bearer <admin_token>``), scoped to the token's shop.

``/v1/admin/onsite/messages`` (list with each message's report, create),
``/v1/admin/onsite/messages/{id}`` (read with its report, replace, delete),
``/v1/admin/onsite/messages/{id}/activate`` and ``/pause``, ``/v1/admin/onsite/template`` (the
seed cart rule as a message body to post), ``/v1/admin/onsite/settings`` (``{"daily_cap"}``: at
most this many messages per visitor a day, across all messages).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import Invalid
from server.core.validation import read_json
from server.merchant import onsite_admin as service
from server.reports import onsite as reports

bp = Blueprint("onsite", __name__, url_prefix="/onsite")



def _with_report(message: Any, report: dict[str, Any] | None) -> dict[str, Any]:
    return {**service.as_json(message), "report": reports.as_json(report or reports._empty())}


@bp.get("/messages")
def list_messages() -> Any:
    """The shop's messages, oldest first (the order a page picks one in), each with its report."""
    session = get_session()
    found = reports.message_reports(session, g.shop)
    return jsonify({"items": [_with_report(m, found.get(m.id)) for m in service.list_messages(session, g.shop)],
                    "daily_cap": g.shop.onsite_daily_cap})


@bp.post("/messages")
def create_message() -> tuple[dict[str, Any], int]:
    """Create a message: ``{"name", "status"?, "rule": {...}, "content": {...}}``."""
    data = service.parse_message(read_json(request))
    message = service.create_message(get_session(), g.shop, data, get_clock().now())
    return _with_report(message, None), 201


@bp.get("/messages/<int:message_id>")
def get_message(message_id: int) -> dict[str, Any]:
    """One message and its report."""
    session = get_session()
    message = service.get_message(session, g.shop, message_id)
    return _with_report(message, reports.message_reports(session, g.shop).get(message.id))


@bp.put("/messages/<int:message_id>")
def put_message(message_id: int) -> dict[str, Any]:
    """Replace a message (the body as for create; ``report`` and times as GET gave them are ignored)."""
    raw = read_json(request)
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in ("report", "created_at", "updated_at")}
    message = service.update_message(get_session(), g.shop, message_id, service.parse_message(raw),
                                     get_clock().now())
    return _with_report(message, reports.message_reports(get_session(), g.shop).get(message.id))


@bp.delete("/messages/<int:message_id>")
def delete_message(message_id: int) -> tuple[str, int]:
    """Delete a message and its report."""
    service.delete_message(get_session(), g.shop, message_id)
    return "", 204


@bp.post("/messages/<int:message_id>/activate")
def activate(message_id: int) -> dict[str, Any]:
    """Start showing a message."""
    return service.as_json(service.set_status(get_session(), g.shop, message_id, "active", get_clock().now()))


@bp.post("/messages/<int:message_id>/pause")
def pause(message_id: int) -> dict[str, Any]:
    """Stop showing a message (its report stays)."""
    return service.as_json(service.set_status(get_session(), g.shop, message_id, "paused", get_clock().now()))


@bp.get("/template")
def template() -> dict[str, Any]:
    """The seed cart rule (third cart visit, more than 10 s, a coupon) as a body for create."""
    return service.seed_template(get_session(), g.shop)


@bp.get("/settings")
def get_settings() -> dict[str, Any]:
    """``{"daily_cap"}``."""
    return {"daily_cap": g.shop.onsite_daily_cap}


@bp.put("/settings")
def put_settings() -> dict[str, Any]:
    """Set ``{"daily_cap": 0..20}``."""
    body = read_json(request)
    if not isinstance(body, dict) or "daily_cap" not in body or isinstance(body["daily_cap"], bool):
        raise Invalid("daily_cap: a whole number from 0 to 20", code="invalid_field")
    return {"daily_cap": service.set_daily_cap(g.shop, body["daily_cap"])}
