"""The dashboard's Connection page at ``/admin/connect``: the webhook secret (shown, rotated),
the origins the collect API refused (allowed with one click), the connection check and the
connect token for the plugin.

Its own blueprint, with the dashboard's log-in guard, CSRF check and headers (every POST
carries the CSRF token). Handlers call the services and redirect back with a flash.
"""
from __future__ import annotations

from flask import Blueprint, Response, flash, g, redirect, url_for
from flask_wtf.csrf import CSRFError

from server.core.clock import get_clock
from server.merchant import dashboard
from server.merchant.shops import rotate_secret

bp = Blueprint("connect_dashboard", __name__, url_prefix="/admin/connect")
bp.before_request(dashboard._guard)
bp.after_request(dashboard._headers)
bp.errorhandler(CSRFError)(dashboard._csrf_failed)


@bp.get("/")
def connect_page() -> str:
    """The Connection page."""
    return dashboard._page("admin/connect.html", active="install")


@bp.post("/secret/rotate")
def rotate() -> Response:
    """A new webhook secret; the one before stays valid for 24 hours."""
    rotated = rotate_secret(g.shop, get_clock().now())
    flash(f"New webhook secret made. The previous one is accepted until "
          f"{rotated.previous_valid_until:%Y-%m-%d %H:%M} UTC: update your shop's back end or plugin before then.",
          "success")
    return redirect(url_for("connect_dashboard.connect_page", _anchor="secret"))
