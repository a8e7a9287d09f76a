"""The dashboard's Campaigns pages at ``/admin/campaigns``: list, create/edit with a segment
builder of plain form fields, preview, send/schedule, cancel and delete.

Its own blueprint, with the dashboard's log-in guard, CSRF check and headers (every POST
carries the CSRF token). Handlers only turn form fields into the API's shapes and call
``server.merchant.campaign_admin``; errors come back as a flash on the same page.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, flash, g, jsonify, redirect, request, url_for

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError, Invalid
from server.core.validation import parse
from server.merchant import campaign_admin as service
from server.merchant.doors import render_page
from server.reports.records import read_page

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

BROWSERS = {"chrome": "Chrome, Edge, Android (FCM)", "firefox": "Firefox (Mozilla)", "safari": "Safari (Apple)",
            "edge_legacy": "Edge legacy (WNS)"}
# The segment builder: each condition type, with the form fields it reads (field -> condition key).
BUILDER: dict[str, dict[str, str]] = {
    "viewed_product": {"product_id": "product_id", "days": "days"},
    "viewed_collection": {"path_prefix": "path_prefix", "days": "days"},
    "carted_not_bought": {"days": "days"},
    "bought": {"days": "days"},
    "last_seen": {"days": "days"},
    "not_seen": {"days": "days"},
    "locale": {"prefix": "prefix"},
    "country": {"code": "code"},
    "browser": {"name": "name"},
    "has_tag": {"tag": "tag"},
}


def segment_from_form(form: Any) -> list[dict[str, Any]]:
    """The ticked conditions of the builder as a segment (an unticked one is ignored)."""
    conditions = []
    for kind, fields in BUILDER.items():
        if form.get(f"seg_{kind}") != "1":
            continue
        condition: dict[str, Any] = {"type": kind}
        for field, key in fields.items():
            raw = (form.get(f"seg_{kind}_{field}") or "").strip()
            if not raw:
                continue
            if field == "days":
                if not raw.isdigit():
                    raise Invalid(f"segment: {kind.replace('_', ' ')}: days must be a whole number",
                                  code="invalid_field")
                condition[key] = int(raw)
            else:
                condition[key] = raw
        conditions.append(condition)
    return conditions


def segment_to_form(segment: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A stored segment as the builder's field values, by condition type."""
    return {c["type"]: c for c in segment or [] if c.get("type") in BUILDER}


def _campaign_fields(form: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {field: form.get(field, "") for field in ("name", "title", "body", "url", "icon", "image")}
    raw["segment"] = segment_from_form(form)
    rate = (form.get("rate_per_minute") or "").strip()
    if rate and not rate.isdigit():
        raise Invalid("rate_per_minute: a whole number of pushes per minute", code="invalid_field")
    raw["rate_per_minute"] = int(rate) if rate else None
    return raw


def _utc(raw: str) -> datetime | None:
    """A ``datetime-local`` value read as UTC (the field is labelled so)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)
    except ValueError:
        raise Invalid("send_at: a date and time, e.g. 2026-06-01T09:00", code="invalid_field") from None


def _page(campaign: Any = None, *, values: dict[str, Any] | None = None, preview: dict[str, Any] | None = None,
          stats: dict[str, Any] | None = None, progress: dict[str, Any] | None = None) -> str:
    data = values if values is not None else (service.campaign_as_json(campaign) if campaign is not None else {
        "name": "", "title": "", "body": "", "url": "", "icon": "", "image": "", "segment": [], "status": "draft",
        "rate_per_minute": None, "send_mode": "now"})
    return render_page("admin/campaign.html", campaign=campaign, data=data,
                           seg=segment_to_form(data.get("segment") or []), builder=BUILDER, browsers=BROWSERS,
                           preview=preview, stats=stats, progress=progress, active="campaigns")


@bp.get("")
def campaigns() -> str:
    """Every campaign with its status and figures."""
    listing = service.list_campaigns(get_session(), g.shop, read_page(request.args.get("page")))
    return render_page("admin/campaigns.html", listing=listing, active="campaigns")


@bp.route("/new", methods=["GET", "POST"])
def new_campaign() -> Any:
    """The form for a new draft."""
    if request.method == "POST":
        try:
            data = parse(service.CampaignIn, _campaign_fields(request.form))
            campaign = service.create_campaign(get_session(), g.shop, data, get_clock().now())
        except ApiError as exc:
            get_session().rollback()
            flash(f"Campaign not saved: {exc.message}", "error")
            return _page(values={**_safe_fields(request.form), "status": "draft"})
        flash(f"Campaign “{campaign.name}” saved as a draft.", "ok")
        return redirect(url_for("dashboard.campaigns.campaign", campaign_id=campaign.id))
    return _page()


def _safe_fields(form: Any) -> dict[str, Any]:
    """What the merchant typed, to show the form again after an error."""
    values = {field: form.get(field, "") for field in ("name", "title", "body", "url", "icon", "image",
                                                      "rate_per_minute")}
    try:
        values["segment"] = segment_from_form(form)
    except ApiError:
        values["segment"] = []
    return values


@bp.route("/<int:campaign_id>", methods=["GET", "POST"])
def campaign(campaign_id: int) -> Any:
    """One campaign: its form (a draft can be changed), figures, and the send and cancel buttons."""
    session = get_session()
    found = service.get_campaign(session, g.shop, campaign_id)
    if request.method == "POST":
        try:
            data = parse(service.CampaignIn, _campaign_fields(request.form))
            service.update_campaign(session, g.shop, campaign_id, data, get_clock().now())
        except ApiError as exc:
            session.rollback()
            flash(f"Campaign not saved: {exc.message}", "error")
            return _page(found, values={**service.campaign_as_json(found), **_safe_fields(request.form)})
        flash("Campaign saved.", "ok")
        return redirect(url_for("dashboard.campaigns.campaign", campaign_id=campaign_id))
    progress = service.campaign_progress(session, g.shop, campaign_id)
    return _page(found, stats=progress, progress=progress)


@bp.get("/<int:campaign_id>/progress")
def progress(campaign_id: int) -> Response:
    """The campaign's live figures as JSON, for the page's bar (polled while it runs)."""
    return jsonify(service.campaign_progress(get_session(), g.shop, campaign_id))


@bp.post("/<int:campaign_id>/preview")
def preview(campaign_id: int) -> str:
    """The audience and the rendered notification for what the form holds now (nothing saved)."""
    session = get_session()
    found = service.get_campaign(session, g.shop, campaign_id)
    values = {**service.campaign_as_json(found), **_safe_fields(request.form)}
    try:
        fields = _campaign_fields(request.form) if found.status == "draft" else {}
        result = service.preview(session, g.shop, campaign_id, parse(service.CampaignIn, fields),
                                 get_clock().now())
    except ApiError as exc:
        flash(f"No preview: {exc.message}", "error")
        result = None
    if found.status != "draft":
        values = service.campaign_as_json(found)
    return _page(found, values=values, preview=result, stats=service.campaign_stats(session, g.shop, campaign_id))


@bp.post("/<int:campaign_id>/send")
def send(campaign_id: int) -> Response:
    """Send now, at a UTC time, or at a local time in each subscriber's zone."""
    form = request.form
    raw: dict[str, Any] = {"mode": form.get("mode") or "now"}
    try:
        if raw["mode"] in ("at", "local") and form.get("send_at"):
            raw["send_at"] = _utc(form.get("send_at", ""))
        if raw["mode"] == "local":
            raw["local_time"] = form.get("local_time") or None
        campaign = service.send_campaign(get_session(), g.shop, campaign_id, parse(service.SendIn, raw),
                                         get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"Not sent: {exc.message}", "error")
    else:
        flash("Sending: the first pushes go out within moments." if campaign.status == "sending"
              else "Scheduled.", "ok")
    return redirect(url_for("dashboard.campaigns.campaign", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/cancel")
def cancel(campaign_id: int) -> Response:
    """Stop a scheduled or sending campaign."""
    try:
        _, cancelled = service.cancel_campaign(get_session(), g.shop, campaign_id, get_clock().now())
    except ApiError as exc:
        flash(f"Not cancelled: {exc.message}", "error")
    else:
        flash(f"Cancelled; {cancelled} pending push{'' if cancelled == 1 else 'es'} will not be sent.", "ok")
    return redirect(url_for("dashboard.campaigns.campaign", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/delete")
def delete(campaign_id: int) -> Response:
    """Delete a campaign that is not running."""
    try:
        service.delete_campaign(get_session(), g.shop, campaign_id)
    except ApiError as exc:
        flash(f"Not deleted: {exc.message}", "error")
        return redirect(url_for("dashboard.campaigns.campaign", campaign_id=campaign_id))
    flash("Campaign deleted.", "ok")
    return redirect(url_for("dashboard.campaigns.campaigns"))
