"""Click links in notifications: ``GET /c/{token}`` records the click and redirects."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, request
from werkzeug.wrappers import Response

from server.core.clock import get_clock
from server.core.db import get_session
from server.clicks.service import parse_action, record_click

bp = Blueprint("clicks", __name__)


@bp.get("/c/<token>")
def click(token: str) -> Response:
    """Record a click on the push the token names and redirect to its page (302); ``?a=1`` or
    ``?a=2`` names the action button clicked, and redirects to that button's page."""
    result = record_click(get_session(), current_app.config["SECRET_KEY"], token, get_clock().now(),
                          action=parse_action(request.args.get("a")))
    response = redirect(result.target, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
