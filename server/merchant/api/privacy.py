"""The merchant's privacy call: ``DELETE /v1/admin/visitors/{visitor_id}`` (Bearer admin token).

It sits beside the merchant API (same prefix, same token) in its own blueprint so that the
erasure path stays small and easy to audit.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from server.core.clock import get_clock
from server.core.db import get_session
from server.merchant.privacy import forget_visitor
from server.core.visitors import find_visitor

bp = Blueprint("privacy", __name__)


@bp.delete("/visitors/<visitor_id>")
def forget(visitor_id: str) -> dict[str, Any]:
    """Delete one visitor's personal data; answers what was deleted or anonymised."""
    session = get_session()
    shop = g.shop
    visitor = find_visitor(session, shop, visitor_id)
    result = forget_visitor(session, shop, visitor, get_clock().now())
    return {"visitor_id": visitor_id, "forgotten": result.as_json()}
