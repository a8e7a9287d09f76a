"""Merchant webhooks from the shop's back end: ``POST /v1/webhooks/{public_key}/{topic}``."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from server.core.clock import get_clock
from server.core.db import get_db, get_session
from server.core.errors import ApiError, Malformed
from server.webhooks import native as webhooks
from server.webhooks import status
from server.core.shops import shop_by_public_key

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")


@bp.post("/<public_key>/<topic>")
def receive(public_key: str, topic: str) -> tuple[dict[str, Any], int]:
    """Verify the signature over the raw body, then record the checkout, order or shipment."""
    if (request.mimetype or "") not in ("application/json", ""):
        raise Malformed("the body must be JSON (Content-Type: application/json)", code="unsupported_media_type")
    shop = shop_by_public_key(get_session(), public_key)
    now = get_clock().now()
    try:
        result = webhooks.handle(get_session(), shop, topic, request.get_data(cache=True),
                                 request.headers.get(webhooks.SIGNATURE_HEADER), now)
    except ApiError as error:
        status.note_failure(get_db().sessionmaker, shop.id, "native", error.code, error.message, now)
        raise
    status.note_delivery(get_session(), shop.id, "native", now)
    return result, 200
