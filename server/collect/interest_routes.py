"""``POST /v1/shops/{public_key}/interests``: the widget's "notify me", on the collect API's terms.

A blueprint of its own with the collect API's checks: the shop from the path (404), the caller's
origin against the shop's origins (403, preflights answered per shop), CORS headers on every
answer, the collect rate limits (attached by ``server.core.limits`` like the collect
blueprint's) and the collect body limit.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from server.collect import widget_routes as collect
from server.collect.interests import InterestIn, register_interest
from server.core.clock import get_clock
from server.core.db import get_session
from server.core.validation import parse, read_json

bp = Blueprint("collect_interests", __name__, url_prefix="/v1/shops")
bp.before_request(collect._shop_and_origin)
bp.after_request(collect._cors_headers)


@bp.route("/<public_key>/interests", methods=["POST", "OPTIONS"])
def interests(public_key: str) -> tuple[dict[str, Any], int]:
    """Store the visitor's interest in a product: 201 when any kind is new, 200 when all were known."""
    data = parse(InterestIn, read_json(request, allow_text_plain=True))
    result = register_interest(get_session(), collect._shop(), data, get_clock().now())
    return {"interests": [{"id": i.id, "kind": i.kind} for i in result.interests]}, 201 if result.created else 200
