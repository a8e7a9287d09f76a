"""The dashboard's On-site page (``/admin/onsite``): the shop's messages with their figures, the
daily cap, the seed template, and one message's form with its report.

A child of ``doors.dashboard``: the door's log-in guard and CSRF check of every POST apply.
Thin: the form becomes the API's body (``server.merchant.onsite_admin`` validates and stores it).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

import sqlalchemy as sa

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.core.models import CouponSource
from server.merchant import onsite_admin as service
from server.merchant.test_devices import onsite_preview_path
from server.merchant.doors import render_page
from server.reports import onsite as reports

bp = Blueprint("onsite", __name__)


RULE_NUMBERS = ("min_visits", "min_dwell_seconds", "items_min", "items_max", "once_per_days")
RULE_TEXTS = ("page", "path_prefix", "visits_scope", "cart_min", "cart_max", "subscribed")
CONTENT_TEXTS = ("title", "text", "image", "coupon_kind", "cta_label", "cta_url")


def _optional(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw or None


def _number(raw: str | None) -> Any:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else (raw or None)  # a non-number is refused by the service, named


def body_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The form's fields as the API's message body (empty fields left out)."""
    rule: dict[str, Any] = {k: _optional(form.get(k)) for k in RULE_TEXTS}
    rule.update({k: _number(form.get(k)) for k in RULE_NUMBERS})
    rule["exit_intent"] = form.get("exit_intent") == "1"
    content: dict[str, Any] = {k: _optional(form.get(k)) for k in CONTENT_TEXTS}
    content["text"] = content["text"] or ""
    content["optin"] = form.get("optin") == "1"
    content["replies"] = [{"label": (form.get(f"reply_label_{i}") or "").strip(), "tag": (form.get(f"reply_tag_{i}") or "").strip()}
                          for i in range(3) if (form.get(f"reply_label_{i}") or form.get(f"reply_tag_{i}") or "").strip()]
    return {"name": (form.get("name") or "").strip(), "status": form.get("status") or "paused",
            "rule": {k: v for k, v in rule.items() if v is not None},
            "content": {k: v for k, v in content.items() if v is not None}}


def _coupon_sources() -> list[str]:
    return list(get_session().scalars(sa.select(CouponSource.kind).where(
        CouponSource.shop_id == g.shop.id, CouponSource.mode.in_(("fixed", "list"))).order_by(CouponSource.kind)))


def _form_page(message: dict[str, Any], message_id: int | None, error: str | None = None,
               report: dict[str, Any] | None = None) -> str:
    origins = list(g.shop.origins or [])
    preview_page = (origins[0].rstrip("/") if origins else "") + onsite_preview_path(message.get("rule"))
    return render_page("admin/onsite_message.html", message=message, message_id=message_id, error=error,
                       report=report, preview_page=preview_page, coupon_sources=_coupon_sources(), currency=g.shop.currency, active="onsite")


@bp.get("/onsite")
def onsite_page() -> str:
    """Every message with its figures, the daily cap and the template button."""
    session = get_session()
    found = reports.message_reports(session, g.shop)
    items = [{**service.as_json(m), "report": reports.as_json(found.get(m.id) or reports._empty())}
             for m in service.list_messages(session, g.shop)]
    return render_page("admin/onsite.html", items=items, daily_cap=g.shop.onsite_daily_cap,
                       currency=g.shop.currency, active="onsite")


@bp.post("/onsite/template")
def onsite_from_template() -> Response:
    """Create the seed cart rule as a paused message, and open it."""
    session = get_session()
    data = service.parse_message(service.seed_template(session, g.shop))
    try:
        message = service.create_message(session, g.shop, data, get_clock().now())
    except ApiError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("dashboard.onsite.onsite_page"))
    flash("The cart template was added (paused): check its coupon, then activate it.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_edit", message_id=message.id))


@bp.get("/onsite/new")
def onsite_new() -> str:
    """An empty message form."""
    blank = {"name": "", "status": "paused", "rule": service.Rule().model_dump(mode="json"),
             "content": {"title": "", "text": "", "replies": []}}
    return _form_page(blank, None)


@bp.post("/onsite/new")
def onsite_create() -> Any:
    """Create a message from the form."""
    body = body_from_form(request.form)
    try:
        message = service.create_message(get_session(), g.shop, service.parse_message(body), get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        return _form_page(body, None, exc.message), 422
    flash(f"On-site message “{message.name}” saved.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_edit", message_id=message.id))


@bp.get("/onsite/<int:message_id>")
def onsite_edit(message_id: int) -> str:
    """One message's form and its report."""
    session = get_session()
    try:
        message = service.get_message(session, g.shop, message_id)
    except ApiError:
        abort(404)
    report = reports.message_reports(session, g.shop).get(message.id) or reports._empty()
    return _form_page(service.as_json(message), message.id, report=reports.as_json(report))


@bp.post("/onsite/<int:message_id>")
def onsite_save(message_id: int) -> Any:
    """Save a message's form."""
    body = body_from_form(request.form)
    try:
        service.update_message(get_session(), g.shop, message_id, service.parse_message(body), get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        if exc.status == 404:
            abort(404)
        return _form_page(body, message_id, exc.message), 422
    flash("On-site message saved.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_edit", message_id=message_id))


@bp.post("/onsite/<int:message_id>/status")
def onsite_status(message_id: int) -> Response:
    """Activate or pause a message."""
    status = request.form.get("status", "")
    try:
        message = service.set_status(get_session(), g.shop, message_id, status, get_clock().now())
    except ApiError as exc:
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
        return redirect(url_for("dashboard.onsite.onsite_page"))
    flash(f"“{message.name}” is {'showing' if status == 'active' else 'paused'}.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_page"))


@bp.post("/onsite/<int:message_id>/delete")
def onsite_delete(message_id: int) -> Response:
    """Delete a message and its figures."""
    try:
        service.delete_message(get_session(), g.shop, message_id)
    except ApiError:
        abort(404)
    flash("On-site message deleted.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_page"))


@bp.post("/onsite/settings")
def onsite_settings() -> Response:
    """Set the daily cap across messages."""
    try:
        service.set_daily_cap(g.shop, request.form.get("daily_cap", ""))
    except ApiError as exc:
        flash(exc.message, "error")
        return redirect(url_for("dashboard.onsite.onsite_page"))
    flash("Daily cap saved.", "ok")
    return redirect(url_for("dashboard.onsite.onsite_page"))
