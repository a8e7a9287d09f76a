"""The on-site script's calls, on the collect API's terms (``server.collect.onsite`` decides).

- ``POST /v1/shops/{public_key}/onsite`` ``{"visitor_id", "url", "product"?, "dwell", "exit"?}`` →
  ``{"message": {...} | null, "next"?, "exit"?}``: the message to show now (its coupon code taken
  and its impression recorded), or when to ask again;
- ``POST /v1/shops/{public_key}/onsite/{token}/{close|click|reply}`` ``{"visitor_id", "reply"?}``:
  what the visitor did with a shown message; a reply tags the visitor.

A blueprint of its own with the collect API's checks, as ``interests_api``: the shop from the
path (404), the caller's origin against the shop's origins (403, preflights answered per shop),
CORS headers on every answer and the collect rate limits (attached in ``server.ops.hardening``).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, request

from server.collect import widget_routes as collect
from server.collect.onsite import AskIn, ReportIn, decide, record
from server.core.clock import get_clock
from server.core.db import get_session
from server.core.validation import parse, read_json

bp = Blueprint("collect_onsite", __name__, url_prefix="/v1/shops")
bp.before_request(collect._shop_and_origin)
bp.after_request(collect._cors_headers)


@bp.route("/<public_key>/onsite", methods=["POST", "OPTIONS"])
def ask(public_key: str) -> dict[str, Any]:
    """Which on-site message the visitor sees now, if any."""
    data = parse(AskIn, read_json(request, allow_text_plain=True))
    return decide(get_session(), collect._shop(), data, get_clock().now(), secret=current_app.secret_key)


@bp.route("/<public_key>/onsite/<token>/<what>", methods=["POST", "OPTIONS"])
def report(public_key: str, token: str, what: str) -> dict[str, Any]:
    """Record a close, click or quick reply on a shown message."""
    if what not in ("close", "click", "reply"):
        abort(404)
    data = parse(ReportIn, read_json(request, allow_text_plain=True))
    return record(get_session(), collect._shop(), token, what, data, get_clock().now())
