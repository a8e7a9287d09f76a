"""The merchant side's two front doors: the admin API and the dashboard.

Each door is a parent blueprint that owns the guard; every merchant route lives on a child
blueprint mounted inside one of them, so a new child is guarded by construction:

- ``api`` at ``/v1/admin``: ``Authorization: Bearer <admin_token>`` on every request;
- ``dashboard`` at ``/admin``: a log-in session on every page but the log-in form, the CSRF
  token on every POST, and the pages' security headers.

Flask runs a parent's ``before_request``, ``after_request`` and error handlers for the
requests of its nested blueprints; ``tests/hardening/test_front_doors.py`` walks the URL map
and proves every merchant rule refuses a request without credentials (and a POST without
CSRF). ``server.merchant.register`` is the one place children are attached to their door.
One merchant-side route stands outside both doors on purpose: ``connect_api`` (``POST
/v1/connect``), which a plugin calls with a one-time connect value instead of a log-in.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from server.core.db import get_session, session_scope
from server.core.errors import Unauthorized
from server.core.kinds import KIND_LABELS
from server.core.models import Shop
from server.core.shops import shop_by_admin_token
from server.reports.records import PushFilter, export_pushes_csv

api = Blueprint("admin_api", __name__, url_prefix="/v1/admin")
dashboard = Blueprint("dashboard", __name__, url_prefix="/admin")
root = Blueprint("root", __name__)  # ``/``: the way in for a person who types the service's address

SESSION_SHOP = "shop_id"
SESSION_TOKEN = "token_check"  # a prefix of the token's hash: a new token logs old sessions out
OPEN_ENDPOINTS = {"dashboard.login"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# --- the admin API's door -------------------------------------------------------------------

def authenticate_bearer() -> Shop:
    """The shop whose admin token the request carries; raises Unauthorized."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    shop = shop_by_admin_token(get_session(), token.strip()) if scheme.lower() == "bearer" else None
    if shop is None:
        raise Unauthorized("a valid admin token is needed: Authorization: Bearer <admin_token>",
                           headers={"WWW-Authenticate": 'Bearer realm="pushcart"'})
    return shop


@api.before_request
def _authenticate() -> None:
    g.shop = authenticate_bearer()


def current_shop() -> Shop:
    """The shop authenticated for this request (either door)."""
    return g.shop


# --- the dashboard's door -------------------------------------------------------------------

@dashboard.app_template_global()
def csrf_token() -> str:
    """The CSRF token for forms and the preview's fetch header."""
    return generate_csrf()


@dashboard.before_request
def _guard() -> Response | None:
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token") or request.headers.get("X-CSRFToken"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from None
    g.shop = _logged_in_shop()
    if g.shop is None and request.endpoint not in OPEN_ENDPOINTS:
        return redirect(url_for("dashboard.login"))
    return None


def _logged_in_shop() -> Shop | None:
    shop_id = session.get(SESSION_SHOP)
    if not shop_id:
        return None
    shop = get_session().get(Shop, shop_id)
    if shop is None or shop.admin_token_hash[:16] != session.get(SESSION_TOKEN):
        session.clear()
        return None
    return shop


@dashboard.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@dashboard.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return render_template("admin/error.html", shop=g.get("shop"),
                           message="The form expired or was sent from elsewhere. Reload the page and try again."), 400


def csv_response(shop: Shop, wanted: PushFilter) -> Response:
    """The shop's push records under ``wanted`` as a streamed CSV download (either door).

    The rows are read after the view has returned, so with a session of their own, closed when
    the last row is out or the client goes away (the request's session is closed by then).
    """
    app, shop_id = current_app._get_current_object(), shop.id  # type: ignore[attr-defined]

    def rows() -> Iterator[str]:
        with session_scope(app) as session:
            yield from export_pushes_csv(session, shop_id, wanted)

    return Response(rows(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="pushes-{shop.public_key}.csv"', "Cache-Control": "no-store"})


def render_page(template: str, **context: Any) -> str:
    """Render a dashboard page for the logged-in shop (the nav needs the shop and the kinds' labels)."""
    return render_template(template, shop=g.shop, kind_labels=KIND_LABELS, **context)


@dashboard.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The log-in form: the shop's admin token starts a dashboard session."""
    if request.method == "POST":
        shop = shop_by_admin_token(get_session(), (request.form.get("token") or "").strip()[:200])
        if shop is None:
            return render_template("admin/login.html", error="That admin token is not valid."), 401
        session.clear()  # a fresh session on log-in (no fixation)
        session[SESSION_SHOP] = shop.id
        session[SESSION_TOKEN] = shop.admin_token_hash[:16]
        return redirect(url_for("dashboard.pages.overview"))
    if g.shop is not None:
        return redirect(url_for("dashboard.pages.overview"))
    return render_template("admin/login.html", error=None)


@dashboard.post("/logout")
def logout() -> Response:
    """End the dashboard session."""
    session.clear()
    return redirect(url_for("dashboard.login"))


@root.get("/")
def home() -> Response:
    """``/`` leads to the dashboard (its door sends a stranger on to the log-in)."""
    return redirect(url_for("dashboard.pages.overview"))
