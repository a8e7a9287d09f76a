"""The merchant API's VAPID keys (``Authorization: Bearer <admin_token>``), scoped to the token's shop.

``GET /v1/admin/vapid-keys``: the shop's keys (``id`` null: the instance key) with their status
and live subscriptions; ``POST /v1/admin/vapid-keys/rotate``: a new current key (201), as
``flask --app wsgi vapid rotate`` does. Private keys are never returned.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.vapid_keys import key_status, rotate
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.merchant import audit
from server.merchant.doors import current_actor

bp = Blueprint("vapid_keys", __name__, url_prefix="/vapid-keys")



@bp.get("")
def list_keys() -> dict[str, Any]:
    """The shop's VAPID keys, oldest first, and how many live subscriptions use each."""
    rows = key_status(get_session(), g.shop, public_key_b64(get_vapid(current_app)), get_clock().now())
    return {"keys": [row.as_json() for row in rows]}


@bp.post("/rotate")
def rotate_key() -> tuple[dict[str, Any], int]:
    """Give the shop a new current key; the old one keeps signing for its subscriptions."""
    key = rotate(get_session(), g.shop, get_clock().now())
    audit.record(get_session(), g.shop.id, current_actor(), get_clock().now(), "settings", "vapid_key", None,
                 f"new key {key.id}")
    return {"id": key.id, "public_key": key.public_key, "status": key.status,
            "created_at": key.created_at.isoformat()}, 201
