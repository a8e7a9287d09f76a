"""The merchant side's two front doors: the admin API and the dashboard.

Each door is a parent blueprint that owns the guard; every merchant route lives on a child
blueprint mounted inside one of them, so a new child is guarded by construction:

- ``api`` at ``/v1/admin``: ``Authorization: Bearer <admin_token>`` on every request;
- ``dashboard`` at ``/admin``: a log-in session on every page but the log-in form (and the
  invitation link), the CSRF token on every POST, and the pages' security headers. A staff
  account logs in with its e-mail and password (``accounts``), the shop's admin token as an
  owner; either way the session is a row of ``dashboard_sessions`` the cookie names by a random
  id, so it can be revoked. A child made with ``OwnerOnly`` (or a view marked ``owner_only``)
  answers 403 to a marketer: the secrets, the platform connection and the team.

Flask runs a parent's ``before_request``, ``after_request`` and error handlers for the
requests of its nested blueprints; ``tests/hardening/test_front_doors.py`` walks the URL map
and proves every merchant rule refuses a request without credentials (and a POST without
CSRF). ``server.merchant.register`` is the one place children are attached to their door.
One merchant-side route stands outside both doors on purpose: ``connect_routes`` (``POST
/v1/connect``), which a plugin calls with a one-time connect value instead of a log-in.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from flask import (Blueprint, Flask, Response, current_app, g, redirect, render_template, request, session,
                   url_for)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from server.core.clock import get_clock
from server.core.db import get_session, session_scope
from server.core.errors import ApiError, RateLimited, Unauthorized
from server.core.kinds import KIND_LABELS
from server.core.limits import check_login, count_failed_login
from server.core.models import Shop, User
from server.core.shops import shop_by_admin_token, shop_cache
from server.merchant import accounts, audit
from server.reports.records import PushFilter, export_pushes_csv

api = Blueprint("admin_api", __name__, url_prefix="/v1/admin")
dashboard = Blueprint("dashboard", __name__, url_prefix="/admin")
root = Blueprint("root", __name__)  # ``/``: the way in for a person who types the service's address

SESSION_ID = "sid"  # the random id of the session's ``dashboard_sessions`` row (only its hash is stored)
SESSION_TOKEN = "token_check"  # an admin-token log-in: a prefix of the token's hash, so a new token logs it out
OPEN_ENDPOINTS = {"dashboard.login", "dashboard.accept_invite"}
OWNER = "owner"
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
    g.actor = audit.API_TOKEN


def current_shop() -> Shop:
    """The shop authenticated for this request (either door)."""
    return g.shop


def current_actor() -> str:
    """Who the request acts for, as the audit log names them: a user's e-mail, "admin token"
    (a dashboard log-in with it) or "API token"."""
    return g.actor


# --- owner-only children and views ------------------------------------------------------------

class OwnerOnly(Blueprint):
    """A dashboard child whose every route is for owners only (a marketer gets 403): the
    secrets, the platform connection, the team. Declared on the blueprint, so a route added to
    it is covered; ``tests/hardening/test_roles.py`` walks the URL map with a marketer."""


View = TypeVar("View", bound=Callable[..., Any])


def owner_only(view: View) -> View:
    """Mark one view of a shared child as for owners only (a marketer gets 403)."""
    view.owner_only = True  # type: ignore[attr-defined]
    return view


def is_owner_only(app: Flask, endpoint: str) -> bool:
    """Whether ``endpoint`` is declared for owners only (its view, or a blueprint on its path)."""
    if getattr(app.view_functions.get(endpoint), "owner_only", False):
        return True
    parts = endpoint.split(".")[:-1]
    return any(isinstance(app.blueprints.get(".".join(parts[:i])), OwnerOnly) for i in range(1, len(parts) + 1))


# --- the dashboard's door -------------------------------------------------------------------

@dashboard.app_template_global()
def csrf_token() -> str:
    """The CSRF token for forms and the preview's fetch header."""
    return generate_csrf()


@dashboard.app_template_global()
def can_open(endpoint: str) -> bool:
    """Whether the logged-in user may open ``endpoint`` (the nav and links hide an owner's page
    from a marketer, as the guard refuses it)."""
    return g.get("role", OWNER) == OWNER or not is_owner_only(current_app, endpoint)


@dashboard.before_request
def _guard() -> Response | None:
    # Who it is first (the refusal pages show a marketer a marketer's nav), then the CSRF token
    # (refused with or without a log-in), then the log-in and the owners' pages.
    g.shop, g.user = _logged_in()
    g.role = g.user.role if g.user is not None else OWNER
    g.actor = g.user.email if g.user is not None else audit.ADMIN_TOKEN
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token") or request.headers.get("X-CSRFToken"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from None
    if g.shop is None:
        if request.endpoint not in OPEN_ENDPOINTS:
            return redirect(url_for("dashboard.login"))
        return None
    if g.role != OWNER and request.endpoint and is_owner_only(current_app, request.endpoint):
        return owners_only_refusal()
    return None


def owners_only_refusal() -> Response:
    """The 403 page a marketer gets for an owner's page or field."""
    return Response(render_template("admin/error.html", shop=g.shop, user=g.user, role=g.role, kind_labels=KIND_LABELS,
                                    title="For owners only",
                                    message="This is for the shop's owners (secrets, the platform connection and "
                                            "the team): ask one of them."), 403)


def _logged_in() -> tuple[Shop | None, User | None]:
    """The shop and the user (None: an admin-token log-in) of the request's live session."""
    raw = session.get(SESSION_ID)
    if not raw:
        return None, None
    row = accounts.find_session(get_session(), raw, get_clock().now())
    shop = get_session().get(Shop, row.shop_id) if row is not None else None
    if row is None or shop is None:
        session.clear()
        return None, None
    if row.user_id is None:
        if shop.admin_token_hash[:16] != session.get(SESSION_TOKEN):
            accounts.end_session(get_session(), raw)
            session.clear()
            return None, None
        return shop, None
    return shop, get_session().get(User, row.user_id)


def _start_session(shop: Shop, user: User | None) -> Response:
    """Log the browser in: a fresh cookie (no fixation) naming a new session row."""
    session.clear()
    lasts = timedelta(hours=current_app.config["DASHBOARD_SESSION_HOURS"])
    session[SESSION_ID] = accounts.open_session(get_session(), shop.id, user.id if user else None,
                                                get_clock().now(), lasts)
    if user is None:
        session[SESSION_TOKEN] = shop.admin_token_hash[:16]
    return redirect(url_for("dashboard.pages.overview"))


@dashboard.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@api.after_request
@dashboard.after_request
def _forget_cached_shop(response: Response) -> Response:
    """After any change through either door (settings, keys, origins, the soft-ask, on-site
    messages...), this process's collect config is read anew at once (other processes' within the
    cache's ttl): one place, so no new page or endpoint can forget it."""
    shop = g.get("shop")  # none when the door refused the request
    if request.method not in ("GET", "HEAD") and shop is not None:
        shop_cache(current_app).forget(shop.public_key)
    return response


@dashboard.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return render_template("admin/error.html", shop=g.get("shop"), user=g.get("user"), role=g.get("role"),
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
    return render_template(template, shop=g.shop, user=g.user, role=g.role, kind_labels=KIND_LABELS, **context)


def _login_page(error: str | None, status: int = 200, email: str = "", token_error: bool = False,
                headers: dict[str, str] | None = None) -> tuple[str, int, dict[str, str]]:
    """The log-in page with an error (the e-mail kept; the token form open after a token's error)."""
    return (render_template("admin/login.html", error=error, email=email, token_error=token_error),
            status, headers or {})


@dashboard.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The log-in form: an e-mail and password (a staff account), or the shop's admin token (as
    an owner), start a dashboard session. Tries are rate-limited per address and per e-mail."""
    if request.method == "GET":
        if g.shop is not None:
            return redirect(url_for("dashboard.pages.overview"))
        return _login_page(None)
    form = request.form
    by_token = "token" in form
    email = "" if by_token else (form.get("email") or "").strip().lower()[:254]
    try:
        check_login(email or None)
    except RateLimited as exc:
        return _login_page(exc.message, 429, email, by_token, exc.headers)
    if by_token:
        shop = shop_by_admin_token(get_session(), (form.get("token") or "").strip()[:200])
        if shop is None:
            return _login_page("That admin token is not valid.", 401, token_error=True)
        return _start_session(shop, None)
    user = accounts.authenticate(get_session(), email, form.get("password") or "", get_clock().now())
    if user is None:
        if email:
            count_failed_login(email)
        return _login_page("That e-mail and password do not match an account.", 401, email)
    shop = get_session().get(Shop, user.shop_id)
    assert shop is not None
    return _start_session(shop, user)


@dashboard.post("/logout")
def logout() -> Response:
    """End this dashboard session."""
    accounts.end_session(get_session(), session.get(SESSION_ID, ""))
    session.clear()
    return redirect(url_for("dashboard.login"))


@dashboard.post("/logout/everywhere")
def logout_everywhere() -> Response:
    """End every session of the logged-in user (for the admin token: every log-in with it)."""
    accounts.end_user_sessions(get_session(), g.shop.id, g.user.id if g.user is not None else None)
    session.clear()
    return redirect(url_for("dashboard.login"))


@dashboard.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str) -> Any:
    """An invitation link: the invitee chooses a password, gets an account and is logged in."""
    now = get_clock().now()
    try:
        invitation = accounts.open_invitation(get_session(), token, now)
    except ApiError as exc:
        return render_template("admin/invite.html", invitation=None, error=exc.message), 404
    if request.method == "GET":
        return render_template("admin/invite.html", invitation=invitation, error=None)
    form = request.form
    try:
        check_login(None)
        if (form.get("password") or "") != (form.get("password_again") or ""):
            raise ApiError("the two passwords differ", code="password_mismatch", status=422)
        user = accounts.accept_invitation(get_session(), token, form.get("password") or "", now)
    except ApiError as exc:  # a weak password, a mismatch, too many tries, a link used meanwhile
        get_session().rollback()
        still_open = exc.code != "invalid_invitation"
        return render_template("admin/invite.html", invitation=invitation if still_open else None,
                               error=exc.message), exc.status, exc.headers
    audit.record(get_session(), user.shop_id, user.email, now, "team", user.email, None,
                 f"joined as {accounts.ROLE_LABELS[user.role].lower()}")
    shop = get_session().get(Shop, user.shop_id)
    assert shop is not None
    return _start_session(shop, user)


@root.get("/")
def home() -> Response:
    """``/`` leads to the dashboard (its door sends a stranger on to the log-in)."""
    return redirect(url_for("dashboard.pages.overview"))
