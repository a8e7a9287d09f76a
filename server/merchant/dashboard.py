"""The merchant's dashboard at ``/admin/``: server-rendered pages behind a token log-in.

Every form carries a CSRF token (Flask-WTF), checked here for every POST. Pages send a
Content-Security-Policy without 'unsafe-inline': scripts and styles come from static files,
data for the charts travels in a ``<script type="application/json">`` block.
"""
from __future__ import annotations

import re
from typing import Any

from flask import (Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from server.core.embed import worker_source
from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.core.models import ALL_KINDS, KINDS, Shop
from server.planning import templates
from server.merchant import install_check
from server.clicks.service import is_http_url
from server.merchant.content_forms import (actions_from_form, locale_rows, locales_from_form, prompt_locales_from_form)
from server.merchant.coupons import coupon_as_json
from server.merchant.presets import STEP_KINDS, list_presets, update_preset
from server.merchant.records import list_pushes, list_visitors, read_cursor, read_page
from server.core.shops import shop_by_admin_token, shop_cache
from server.merchant.shops import SettingsUpdate, settings_as_json, update_settings
from server.merchant.guardrails import guardrails
from server.merchant.stats import compute_stats, parse_range
from server.merchant.test_pushes import send_test_push
from server.core.validation import parse

bp = Blueprint("dashboard", __name__, url_prefix="/admin")

SESSION_SHOP = "shop_id"
SESSION_TOKEN = "token_check"  # a prefix of the token's hash: a new token logs old sessions out
SESSION_VISITOR = "my_visitor_id"
OPEN_ENDPOINTS = {"dashboard.login"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
KIND_LABELS = {
    "welcome": "Welcome",
    "browse_abandonment": "Browse & cart abandonment",
    "checkout_recovery": "Checkout recovery",
    "repurchase": "Repurchase",
    "shipped": "Shipped",
    "back_in_stock": "Back in stock",
    "price_drop": "Price drop",
    "campaign": "Campaign",
}
WEBHOOK_TOPICS = ("checkouts", "orders", "shipments", "products")
PLATFORM_LABELS = {"custom": "Custom / other", "shopify": "Shopify", "woocommerce": "WooCommerce"}
SHOPIFY_TOPICS = (("Checkout creation", "checkouts/create"), ("Checkout update", "checkouts/update"),
                  ("Order payment", "orders/paid"), ("Fulfillment creation", "fulfillments/create"),
                  ("Product update", "products/update"))
WOOCOMMERCE_TOPICS = (("Order created", "order.created"), ("Order updated", "order.updated"),
                      ("Product updated", "product.updated"))
_DELAY = re.compile(r"^\s*(\d{1,6})\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_delays(text: str) -> list[int]:
    """``"30m, 6h, 2d"`` into seconds; raises ApiError (422) on anything else."""
    delays = []
    for part in text.split(","):
        match = _DELAY.match(part)
        if not match:
            raise ApiError(f"delay {part.strip()!r}: write a number with s, m, h or d (e.g. 30m, 6h, 2d)",
                           code="invalid_field", status=422)
        delays.append(int(match.group(1)) * _UNITS[match.group(2)])
    return delays


def format_delay(seconds: int) -> str:
    """Seconds in the largest whole unit: ``86400`` → ``1d``, ``5400`` → ``90m``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


@bp.app_template_global()
def csrf_token() -> str:
    """The CSRF token for forms and the preview's fetch header."""
    return generate_csrf()


@bp.before_request
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


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return render_template("admin/error.html", shop=g.get("shop"),
                           message="The form expired or was sent from elsewhere. Reload the page and try again."), 400


def _page(template: str, **context: Any) -> str:
    return render_template(template, shop=g.shop, kind_labels=KIND_LABELS, **context)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The log-in form: the shop's admin token starts a dashboard session."""
    if request.method == "POST":
        shop = shop_by_admin_token(get_session(), (request.form.get("token") or "").strip()[:200])
        if shop is None:
            return render_template("admin/login.html", error="That admin token is not valid."), 401
        session.clear()  # a fresh session on log-in (no fixation)
        session[SESSION_SHOP] = shop.id
        session[SESSION_TOKEN] = shop.admin_token_hash[:16]
        return redirect(url_for("dashboard.overview"))
    if g.shop is not None:
        return redirect(url_for("dashboard.overview"))
    return render_template("admin/login.html", error=None)


@bp.post("/logout")
def logout() -> Response:
    """End the dashboard session."""
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("/")
def overview() -> str:
    """Headline figures, the daily chart and the funnel for a date range."""
    try:
        rng = parse_range(request.args.get("from"), request.args.get("to"), get_clock().now())
        error = None
    except ApiError as exc:
        rng, error = parse_range(None, None, get_clock().now()), exc.message
    stats = compute_stats(get_session(), g.shop.id, rng)
    stats["currency"] = g.shop.currency
    stats["guardrails"] = guardrails(get_session(), g.shop, stats["by_kind"], get_clock().now())
    return _page("admin/overview.html", stats=stats, error=error, active="overview")


@bp.get("/events")
def events() -> str:
    """The five preset cards."""
    presets = list_presets(get_session(), g.shop)
    for preset in presets:
        preset["delays_text"] = ", ".join(format_delay(d) for d in preset["delays"])
        preset["locale_rows"] = locale_rows(preset["locales"])
        preset["coupon"] = coupon_as_json(get_session(), g.shop, preset["kind"])
    return _page("admin/events.html", presets=presets, my_visitor=session.get(SESSION_VISITOR, ""),
                 active="events")


@bp.post("/events/<kind>")
def save_event(kind: str) -> Response:
    """Save one card: its switch, timing and templates."""
    if kind not in KINDS:
        abort(404)
    form = request.form
    changes: dict[str, Any] = {}
    if form.get("action") == "toggle":
        changes["enabled"] = form.get("enabled") == "1"
    else:
        changes = {field: form.get(field, "") for field in ("title", "body", "url", "icon", "image")}
        try:
            changes["delays"] = parse_delays(form.get("delays", ""))
        except ApiError as exc:
            flash(f"{KIND_LABELS[kind]}: {exc.message}", "error")
            return redirect(url_for("dashboard.events", _anchor=kind))
        if kind in STEP_KINDS:
            # One texts pair per delay; the fields of steps without a delay are not kept.
            steps = [{"title": form.get(f"step_title_{i}", ""), "body": form.get(f"step_body_{i}", "")}
                     for i in range(min(len(changes["delays"]), 5))]
            while steps and not (steps[-1]["title"] or steps[-1]["body"]):
                steps.pop()
            changes["steps"] = steps
        changes["actions"] = actions_from_form(form)
        changes["locales"] = locales_from_form(form)
    try:
        update_preset(get_session(), g.shop, kind, changes, get_clock().now())
    except ApiError as exc:
        get_session().rollback()  # the redirect is a success status: keep nothing half-saved
        flash(f"{KIND_LABELS[kind]}: {exc.message}", "error")
        return redirect(url_for("dashboard.events", _anchor=kind))
    if "enabled" in changes:
        flash(f"{KIND_LABELS[kind]} is now {'on' if changes['enabled'] else 'off'}.", "ok")
    else:
        flash(f"{KIND_LABELS[kind]} saved.", "ok")
    return redirect(url_for("dashboard.events", _anchor=kind))


@bp.post("/events/<kind>/test")
def test_push(kind: str) -> Response:
    """"Send a test push to me": one push of this kind, due now, to the merchant's browser."""
    visitor_key = (request.form.get("visitor_id") or "").strip()[:64]
    try:
        count = send_test_push(get_session(), g.shop, kind, visitor_key, get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"Test push: {exc.message}", "error")
        return redirect(url_for("dashboard.events", _anchor=kind))
    session[SESSION_VISITOR] = visitor_key
    flash(f"Test push queued for {count} subscription(s); it goes out with the next dispatch.", "ok")
    return redirect(url_for("dashboard.events", _anchor=kind))


@bp.post("/preview")
def preview() -> Response:
    """Render templates with sample data for the live preview (JSON in, JSON out)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": {"code": "malformed", "message": "a JSON object is needed"}}), 400
    context = {**templates.SAMPLE_CONTEXT, "shop_name": g.shop.name}
    result: dict[str, Any] = {"errors": {}}
    for field in ("title", "body", "url", "icon", "image"):
        source = data.get(field, "")
        if not isinstance(source, str) or len(source) > templates.MAX_TEMPLATE_CHARS:
            result["errors"][field] = "too long or not text"
            result[field] = ""
            continue
        try:
            result[field] = templates.render(source, context)
        except templates.RENDER_ERRORS as exc:  # a syntax error, a limit, an error of an operation
            result["errors"][field] = templates.describe(exc)
            result[field] = ""
    for field in ("url", "icon", "image"):
        if result[field] and not is_http_url(result[field]):
            result["errors"][field] = "must be an http(s) URL"
            result[field] = ""
    return jsonify(result)


@bp.get("/pushes")
def pushes() -> str:
    """Push records, filterable by kind and status."""
    kind, status = request.args.get("kind") or None, request.args.get("status") or None
    try:
        page = list_pushes(get_session(), g.shop.id, kind=kind, status=status,
                           page=read_page(request.args.get("page")), cursor=read_cursor(request.args.get("cursor")))
        error = None
    except ApiError as exc:
        page, error, kind, status = list_pushes(get_session(), g.shop.id), exc.message, None, None
    return _page("admin/pushes.html", page=page.as_json(), kind=kind, status=status, error=error,
                 kinds=ALL_KINDS, active="pushes")


@bp.get("/visitors")
def visitors() -> str:
    """Visitor records."""
    raw = request.args.get("subscribed", "")
    subscribed = {"1": True, "0": False}.get(raw)
    try:
        page = list_visitors(get_session(), g.shop.id, subscribed=subscribed,
                             page=read_page(request.args.get("page")), cursor=read_cursor(request.args.get("cursor")))
    except ApiError:
        page, subscribed = list_visitors(get_session(), g.shop.id), None
    return _page("admin/visitors.html", page=page.as_json(), subscribed=subscribed, active="visitors")


def _install_context() -> dict[str, Any]:
    public_url = current_app.config["PUBLIC_URL"]
    return {
        "public_url": public_url,
        "script_tag": f'<script src="{public_url}/widget.js" data-shop="{g.shop.public_key}" async></script>',
        "sw_source": worker_source(public_url),
        "webhooks": {topic: f"{public_url}/v1/webhooks/{g.shop.public_key}/{topic}" for topic in WEBHOOK_TOPICS},
        "platform": g.shop.platform or "custom",
        "platform_labels": PLATFORM_LABELS,
        "shopify_url": f"{public_url}/v1/integrations/shopify/{g.shop.public_key}",
        "shopify_proxy_url": f"{public_url}/v1/integrations/shopify/{g.shop.public_key}/proxy",
        "shopify_topics": SHOPIFY_TOPICS,
        "woocommerce_url": f"{public_url}/v1/integrations/woocommerce/{g.shop.public_key}",
        "woocommerce_topics": WOOCOMMERCE_TOPICS,
        "secret_set": bool(g.shop.platform_secret),
        "active": "install",
    }


@bp.get("/install")
def install() -> str:
    """What to paste into the shop: script tag, service worker file, webhook URLs; per platform
    (Shopify, WooCommerce) the theme snippet and the webhook set-up steps."""
    return _page("admin/install.html", check=None, **_install_context())


@bp.get("/install/pushcart-sw.js")
def sw_download() -> Response:
    """The service worker file for the shop's origin, as a download."""
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    name = g.shop.sw_path.rsplit("/", 1)[-1] or "pushcart-sw.js"
    return Response(source, mimetype="text/javascript",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/install/check")
def install_check_run() -> str:
    """Fetch the shop origin's service worker file and report."""
    origin = request.form.get("origin", "")
    try:
        check = install_check.check_service_worker(g.shop, origin, current_app.config["PUBLIC_URL"])
    except ApiError as exc:
        check = install_check.CheckResult(False, "", None, exc.message)
    return _page("admin/install.html", check=check, **_install_context())


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Any:
    """The shop's settings: name, origins, prompt, frequency cap, quiet hours, attribution, platform."""
    if request.method == "POST":
        form = request.form
        raw: dict[str, Any] = {
            "name": form.get("name", ""),
            "origins": [line.strip() for line in form.get("origins", "").splitlines() if line.strip()],
            "sw_path": form.get("sw_path", ""),
            "prompt": {"text": form.get("prompt_text", ""), "color": form.get("prompt_color", ""),
                       "after_pageviews": _int(form.get("after_pageviews")),
                       "after_seconds": _int(form.get("after_seconds")),
                       "dismiss_days": _int(form.get("dismiss_days")),
                       "locales": prompt_locales_from_form(form)},
            "frequency_cap_per_24h": _int(form.get("frequency_cap_per_24h")),
            "attribution_hours": _int(form.get("attribution_hours")),
            "quiet_hours": ({"start": form.get("quiet_start", ""), "end": form.get("quiet_end", "")}
                            if form.get("quiet_start") or form.get("quiet_end") else None),
            "platform": form.get("platform") or "custom",
            "platform_domain": form.get("platform_domain", ""),
            "alert_min_drop_percent": _int(form.get("alert_min_drop_percent")),
            "alert_window_days": _int(form.get("alert_window_days")),
            "pause_unengaged_after": _int(form.get("pause_unengaged_after")),
        }
        # Write-only: an empty field keeps the secret; the box clears it.
        if form.get("platform_secret", "").strip():
            raw["platform_secret"] = form["platform_secret"]
        elif form.get("clear_platform_secret") == "1":
            raw["platform_secret"] = ""
        try:
            update_settings(g.shop, parse(SettingsUpdate, raw))
            get_session().flush()
            shop_cache(current_app).forget(g.shop.public_key)
        except ApiError as exc:
            get_session().rollback()
            flash(f"Settings not saved: {exc.message}", "error")
            return redirect(url_for("dashboard.settings"))
        flash("Settings saved.", "ok")
        return redirect(url_for("dashboard.settings"))
    current = settings_as_json(g.shop)
    return _page("admin/settings.html", settings=current, platform_labels=PLATFORM_LABELS,
                 prompt_locale_rows=locale_rows(current["prompt"].get("locales") or {}), active="settings")


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 7 else None
