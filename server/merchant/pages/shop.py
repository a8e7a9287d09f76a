"""The dashboard's core pages (Overview, Events, records, Install, Settings) behind ``doors.dashboard``.

The door checks the log-in and every POST's CSRF token and sends the pages' headers (a
Content-Security-Policy without 'unsafe-inline': scripts and styles come from static files,
data for the charts travels in a ``<script type="application/json">`` block).
"""
from __future__ import annotations

import functools
import re
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, request, session, url_for

from server.core.embed import worker_source
from server.core.kinds import KIND_LABELS
from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.core.models import KINDS, RECORD_KINDS
from server.planning import templates
from server.merchant import connection, install_check, plugin_zip
from server.merchant import audit
from server.merchant.campaign_admin import campaign_choices
from server.merchant.doors import OWNER, csv_response, current_actor, owner_only, owners_only_refusal, render_page
from server.merchant.pages.test_devices import application_server_key
from server.clicks.service import is_http_url
from server.merchant.content_forms import (FORM_UNITS, MAX_DELAY_ROWS, actions_from_form, delay_rows, delays_from_form,
                                           locale_rows, locales_from_form, prompt_locales_from_form)
from server.merchant.coupon_admin import coupon_as_json
from server.merchant.presets import STEP_KINDS, list_presets
from server.reports.records import (PUSH_STATUSES, PushFilter, list_pushes, list_visitors, read_cursor, read_page,
                                    read_push_filter)
from server.merchant.shop_admin import SettingsUpdate, prompt_as_json, settings_as_json, update_settings
from server.merchant.softask_admin import design_of
from server.reports import onsite as onsite_reports
from server.reports.first_steps import first_steps
from server.reports.guardrails import guardrails
from server.reports.stats import compute_stats, parse_range
from server.merchant.test_devices import count_devices, list_test_devices
from server.core.validation import parse

bp = Blueprint("pages", __name__)

SESSION_WORKER_FOUND = "worker_found"  # the Install page's check passed (a first step)
SAMPLE_IMAGE = "admin/sample-product.svg"
WEBHOOK_TOPICS = ("checkouts", "orders", "shipments", "products")
PLATFORM_LABELS = {"custom": "Custom / other", "shopify": "Shopify", "woocommerce": "WooCommerce"}
SHOPIFY_TOPICS = (("Checkout creation", "checkouts/create"), ("Checkout update", "checkouts/update"),
                  ("Order payment", "orders/paid"), ("Fulfillment creation", "fulfillments/create"),
                  ("Product update", "products/update"))
WOOCOMMERCE_TOPICS = (("Order created", "order.created"), ("Order updated", "order.updated"),
                      ("Product updated", "product.updated"))
# The Settings form's platform fields: owners only (a marketer's form has none, and one sent is refused).
PLATFORM_FIELDS = ("platform", "platform_domain", "platform_secret", "clear_platform_secret")
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
    stats["onsite"] = onsite_reports.as_json(onsite_reports.totals(get_session(), g.shop, rng.start, rng.end))
    stats["guardrails"] = guardrails(get_session(), g.shop, stats["by_kind"], get_clock().now())
    steps = first_steps(get_session(), g.shop.id, bool(session.get(SESSION_WORKER_FOUND)))
    return render_page("admin/overview.html", stats=stats, error=error, first_steps=steps, active="overview",
                       refused_origins=connection.refused_origins(get_session(), g.shop.id))


@bp.get("/events")
def events() -> str:
    """The five preset cards."""
    presets = list_presets(get_session(), g.shop)
    for preset in presets:
        rows: list[tuple[int | str, str]] = list(delay_rows(preset["delays"]))
        if preset["kind"] in STEP_KINDS:  # an empty row for each step not used yet
            rows += [("", "hours")] * (MAX_DELAY_ROWS - len(rows))
        preset["delay_rows"] = rows
        preset["locale_rows"] = locale_rows(preset["locales"])
        preset["coupon"] = coupon_as_json(get_session(), g.shop, preset["kind"])
    return render_page("admin/events.html", presets=presets, test_devices=count_devices(get_session(), g.shop),
                       delay_units=FORM_UNITS, active="events")


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
            # Number and unit per step; the older free-text field ("30m, 6h") is still read.
            delays = delays_from_form(form)
            changes["delays"] = delays if delays is not None else parse_delays(form.get("delays", ""))
        except ApiError as exc:
            flash(f"{KIND_LABELS[kind]}: {exc.message}", "error")
            return redirect(url_for("dashboard.pages.events", _anchor=kind))
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
        audit.preset_change(get_session(), g.shop, kind, changes, current_actor(), get_clock().now())
    except ApiError as exc:
        get_session().rollback()  # the redirect is a success status: keep nothing half-saved
        flash(f"{KIND_LABELS[kind]}: {exc.message}", "error")
        return redirect(url_for("dashboard.pages.events", _anchor=kind))
    if "enabled" in changes:
        flash(f"{KIND_LABELS[kind]} is now {'on' if changes['enabled'] else 'off'}.", "ok")
    else:
        flash(f"{KIND_LABELS[kind]} saved.", "ok")
    return redirect(url_for("dashboard.pages.events", _anchor=kind))


@bp.post("/preview")
def preview() -> Response:
    """Render templates with sample data for the live preview (JSON in, JSON out)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": {"code": "malformed", "message": "a JSON object is needed"}}), 400
    # The sample product's picture is a file of this app, so the preview shows a real image.
    context = {**templates.SAMPLE_CONTEXT, "shop_name": g.shop.name,
               "product_image": current_app.config["PUBLIC_URL"] + url_for("static", filename=SAMPLE_IMAGE)}
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
    """Push records as a table: filter by campaign, kind, status, days and a search; export as CSV."""
    try:
        wanted = read_push_filter(request.args)
        page = list_pushes(get_session(), g.shop.id, wanted=wanted, page=read_page(request.args.get("page")),
                           cursor=read_cursor(request.args.get("cursor")))
        error = None
    except ApiError as exc:
        wanted, error = PushFilter(), exc.message
        page = list_pushes(get_session(), g.shop.id, wanted=wanted)
    return render_page("admin/pushes.html", page=page.as_json(), wanted=wanted, args=wanted.as_args(), error=error,
                       kinds=RECORD_KINDS, statuses=PUSH_STATUSES, campaigns=campaign_choices(get_session(), g.shop),
                       active="pushes")


@bp.get("/pushes.csv")
def pushes_csv() -> Response:
    """The records the page's filters select, as a CSV download."""
    return csv_response(g.shop, read_push_filter(request.args))


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
    return render_page("admin/visitors.html", page=page.as_json(), subscribed=subscribed, active="visitors")


def install_context() -> dict[str, Any]:
    """What the Install page shows besides the check: snippets, platform, topics, secrets set or not."""
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
        # The operator deployed the Shopify app (integrations/shopify): its webhooks and proxy are
        # signed with this key, so the merchant installs the app instead of building one.
        "shopify_app": bool(current_app.config["SHOPIFY_CLIENT_SECRET"]),
        "woocommerce_url": f"{public_url}/v1/integrations/woocommerce/{g.shop.public_key}",
        "woocommerce_topics": WOOCOMMERCE_TOPICS,
        "secret_set": bool(g.shop.platform_secret),
        "refused_origins": connection.refused_origins(get_session(), g.shop.id),
        "active": "install",
    }


@bp.get("/install")
@owner_only  # the platform connection: owners only
def install() -> str:
    """What to paste into the shop: script tag, service worker file, webhook URLs; per platform
    (Shopify, WooCommerce) the theme snippet and the webhook set-up steps."""
    return render_page("admin/install.html", check=None, **install_context())


@bp.get("/install/pushcart-sw.js")
@owner_only  # the platform connection: owners only
def sw_download() -> Response:
    """The service worker file for the shop's origin, as a download."""
    source = worker_source(current_app.config["PUBLIC_URL"]) + "\n"
    name = g.shop.sw_path.rsplit("/", 1)[-1] or "pushcart-sw.js"
    return Response(source, mimetype="text/javascript",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/install/pushcart-for-woocommerce.zip")
@owner_only  # the platform connection: owners only
def plugin_download() -> Response:
    """The WordPress plugin, zipped from this install's source as ``make plugin`` builds it."""
    try:
        data, name = plugin_zip.build_zip(), plugin_zip.zip_name()
    except plugin_zip.PluginSourceMissing:
        abort(404)
    return Response(data, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post("/install/check")
@owner_only  # the platform connection: owners only
def install_check_run() -> str:
    """Fetch the shop origin's service worker file and report."""
    origin = request.form.get("origin", "")
    try:
        check = install_check.check_service_worker(g.shop, origin, current_app.config["PUBLIC_URL"])
    except ApiError as exc:
        check = install_check.CheckResult(False, "", None, exc.message)
    if check.ok:
        session[SESSION_WORKER_FOUND] = True
    return render_page("admin/install.html", check=check, **install_context())


@bp.post("/install/manifest-check")
@owner_only  # the platform connection: owners only
def install_manifest_check_run() -> str:
    """Fetch the shop origin's home page and the manifest it links, and report."""
    origin = request.form.get("origin", "")
    try:
        check = install_check.check_manifest(g.shop, origin,
                                             shopify_app=bool(current_app.config["SHOPIFY_CLIENT_SECRET"]))
    except ApiError as exc:
        check = install_check.CheckResult(False, "", None, exc.message)
    return render_page("admin/install.html", manifest_check=check, **install_context())


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Any:
    """The shop's settings: name, origins, prompt, frequency cap, quiet hours, attribution, platform."""
    if request.method == "POST":
        form = request.form
        if g.role != OWNER and any(field in form for field in PLATFORM_FIELDS):
            return owners_only_refusal()  # the platform connection and its secret: owners only
        raw: dict[str, Any] = {
            "name": form.get("name", ""),
            "origins": [line.strip() for line in form.get("origins", "").splitlines() if line.strip()],
            "sw_path": form.get("sw_path", ""),
            # The design (texts, colour, position, icon, phone) is the designer's; kept as it is
            # unless this form sends the older text and colour fields.
            "prompt": {**design_of(prompt_as_json(g.shop.prompt)),
                       **{name: form[f"prompt_{name}"] for name in ("text", "color") if f"prompt_{name}" in form},
                       "after_pageviews": _int(form.get("after_pageviews")),
                       "after_seconds": _int(form.get("after_seconds")),
                       "dismiss_days": _int(form.get("dismiss_days")),
                       "locales": prompt_locales_from_form(form)},
            "frequency_cap_per_24h": _int(form.get("frequency_cap_per_24h")),
            "attribution_hours": _int(form.get("attribution_hours")),
            "timezone": form.get("timezone", "").strip() or None,
            "currency": form.get("currency", "").strip().upper() or None,
            "quiet_hours": ({"start": form.get("quiet_start", ""), "end": form.get("quiet_end", "")}
                            if form.get("quiet_start") or form.get("quiet_end") else None),
            "alert_min_drop_percent": _int(form.get("alert_min_drop_percent")),
            "alert_window_days": _int(form.get("alert_window_days")),
            "pause_unengaged_after": _int(form.get("pause_unengaged_after")),
        }
        if g.role == OWNER:
            raw["platform"] = form.get("platform") or "custom"
            raw["platform_domain"] = form.get("platform_domain", "")
            # Write-only: an empty field keeps the secret; the box clears it.
            if form.get("platform_secret", "").strip():
                raw["platform_secret"] = form["platform_secret"]
            elif form.get("clear_platform_secret") == "1":
                raw["platform_secret"] = ""
        try:
            with audit.settings_change(get_session(), g.shop, current_actor(), get_clock().now()):
                update_settings(g.shop, parse(SettingsUpdate, raw))
            get_session().flush()
        except ApiError as exc:
            get_session().rollback()
            flash(f"Settings not saved: {exc.message}", "error")
            return redirect(url_for("dashboard.pages.settings"))
        flash("Settings saved.", "ok")
        return redirect(url_for("dashboard.pages.settings"))
    current = settings_as_json(g.shop)
    return render_page("admin/settings.html", settings=current, platform_labels=PLATFORM_LABELS, zones=zone_names(),
                       devices=list_test_devices(get_session(), g.shop),
                       application_server_key=application_server_key(),
                       prompt_locale_rows=locale_rows(current["prompt"].get("locales") or {}), active="settings")


@functools.cache
def zone_names() -> tuple[str, ...]:
    """The time zones the Settings page offers: every name this machine's tz database knows (the
    check ``server.core.fields.zone`` makes on save), in order; read once, on first use."""
    return tuple(sorted(available_timezones()))


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 7 else None
