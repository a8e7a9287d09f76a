"""The merchant API for coupons (``Authorization: Bearer <admin_token>``), scoped to the token's shop.

``GET/PUT /v1/admin/coupons/{kind}`` read and set a kind's coupon source; ``POST
/v1/admin/coupons/{kind}/codes`` uploads single-use codes: a ``text/plain`` body of one code per
line (up to 10,000, 1 MiB), or JSON ``{"codes": [...]}`` (up to 1,000, the JSON limits).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import Invalid
from server.core.validation import parse, read_json
from server.merchant.coupon_admin import (MAX_UPLOAD_BYTES, CouponUpdate, coupon_as_json, update_coupon, upload_codes)

bp = Blueprint("coupons", __name__, url_prefix="/coupons")


@bp.before_request
def _upload_limit() -> None:
    if request.endpoint == "admin_api.coupons.post_codes":
        request.max_content_length = MAX_UPLOAD_BYTES  # a code list is bigger than other bodies


@bp.get("/<kind>")
def get_coupon(kind: str) -> dict[str, Any]:
    """The kind's coupon source with the list's remaining and assigned counts."""
    return coupon_as_json(get_session(), g.shop, kind)


@bp.put("/<kind>")
def put_coupon(kind: str) -> dict[str, Any]:
    """Set the kind's coupon source: ``{"mode": "none" | "fixed" | "list", "code"?}``."""
    update = parse(CouponUpdate, read_json(request))
    return update_coupon(get_session(), g.shop, kind, update, get_clock().now())


@bp.post("/<kind>/codes")
def post_codes(kind: str) -> tuple[dict[str, Any], int]:
    """Add single-use codes to the kind's list; 201 with what was added and what is left."""
    if request.mimetype == "text/plain":
        lines = request.get_data(cache=True).decode("utf-8", errors="replace").splitlines()
    else:
        body = read_json(request)
        codes = body.get("codes") if isinstance(body, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise Invalid("codes: a list of strings is needed (or a text/plain body, one code per line)",
                          code="invalid_field")
        lines = codes
    return upload_codes(get_session(), g.shop, kind, lines, get_clock().now()), 201
