"""``POST /v1/connect``: a plugin connects itself with the value the merchant pasted.

No Bearer token: the connect token in the body is the credential (single use, one hour, stored
hashed). Rate limited per client address (``RATELIMIT_CONNECT_PER_IP``, attached by
``server.ops.hardening``). ``GET /connect/<value>`` (the value opened in a browser) only says
what the value is for; it spends nothing.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.shops import shop_cache
from server.core.validation import parse, read_json
from server.merchant.connect import ConnectIn, redeem

bp = Blueprint("connect_api", __name__)


@bp.post("/v1/connect")
def connect() -> dict[str, Any]:
    """Spend a connect token: register the site's origin and platform; answer the shop's keys and URLs."""
    data = parse(ConnectIn, read_json(request))
    shop, answer = redeem(get_session(), data, get_clock().now(), current_app.config["PUBLIC_URL"])
    shop_cache(current_app).forget(shop.public_key)
    return answer


@bp.get("/connect/<value>")
def connect_value_opened(value: str) -> Response:
    """The connect value opened in a browser: what to do with it (nothing is spent)."""
    return Response("This is a Pushcart connect value. Paste the whole address into your shop plugin's "
                    "Pushcart settings (it works once, within an hour of being made).\n",
                    mimetype="text/plain", headers={"Cache-Control": "no-store"})
