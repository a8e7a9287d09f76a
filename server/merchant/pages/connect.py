"""The dashboard's Connection page at ``/admin/connect``: the webhook secret (shown, rotated),
the origins the collect API refused (allowed with one click), the connection check and the
connect token for the plugin.

Its own blueprint, with the dashboard's log-in guard, CSRF check and headers (every POST
carries the CSRF token). Handlers call the services and redirect back with a flash.
"""
from __future__ import annotations

from flask import Response, current_app, flash, g, redirect, request, url_for

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.merchant import connection, install_check
from server.merchant.pages.shop import install_context
from server.merchant import audit
from server.merchant.doors import OwnerOnly, current_actor, render_page
from server.merchant.connect import issue_token
from server.merchant.shop_admin import rotate_secret

# Owners only: the webhook secret, connect values and the shop's origins (a marketer gets 403).
bp = OwnerOnly("connect", __name__, url_prefix="/connect")


def _connection_page(worker: bool) -> str:
    shop = g.shop
    public_url = current_app.config["PUBLIC_URL"]
    checker = (lambda origin: install_check.check_service_worker(shop, origin, public_url)) if worker else None
    checked = connection.check(get_session(), shop, get_clock().now(), checker)
    return render_page("admin/connect.html", active="install", checked=checked, worker_checked=worker,
                           platform_labels=connection.PLATFORM_LABELS,
                           refused_origins=connection.refused_origins(get_session(), shop.id),
                           in_grace=shop.previous_secret_until is not None
                           and get_clock().now() < shop.previous_secret_until)


@bp.get("/")
def connect_page() -> str:
    """The Connection page: what the service saw (the worker file is fetched on request only)."""
    return _connection_page(worker=False)


@bp.post("/check")
def run_check() -> str:
    """The Connection page with the worker file fetched from each of the shop's origins."""
    return _connection_page(worker=True)


@bp.post("/origins/allow")
def allow() -> Response:
    """Add a refused origin to the shop's origins."""
    try:
        with audit.settings_change(get_session(), g.shop, current_actor(), get_clock().now()):
            origin = connection.allow_origin(get_session(), g.shop, request.form.get("origin", "")[:300])
    except ApiError as exc:
        flash(exc.message, "error")
    else:
        flash(f"{origin} is now one of your shop's origins: the widget works there within a minute.", "success")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("dashboard.connect.connect_page"))


def _same_site(url: str | None) -> bool:
    """Whether ``url`` is one of this dashboard's own pages (a safe place to send the browser back to)."""
    return bool(url) and url.startswith(request.host_url + "admin/")


@bp.post("/secret/rotate")
def rotate() -> Response:
    """A new webhook secret; the one before stays valid for 24 hours."""
    with audit.settings_change(get_session(), g.shop, current_actor(), get_clock().now()):
        rotated = rotate_secret(g.shop, get_clock().now())
    flash(f"New webhook secret made. The previous one is accepted until "
          f"{rotated.previous_valid_until:%Y-%m-%d %H:%M} UTC: update your shop's back end or plugin before then.",
          "success")
    return redirect(url_for("dashboard.connect.connect_page", _anchor="secret"))


@bp.post("/token")
def make_token() -> str:
    """The Install page with one fresh connect value to paste into the plugin (shown once, never
    put in the session cookie)."""
    issued = issue_token(g.shop, get_clock().now(), current_app.config["PUBLIC_URL"])
    return render_page("admin/install.html", check=None, connect=issued, **install_context())
