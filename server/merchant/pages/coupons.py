"""The dashboard's Coupons page (``/admin/coupons``): per kind (campaigns too), the coupon source and its code list.

A child of ``doors.dashboard``: the door's log-in guard and CSRF check of every POST apply.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.core.models import ALL_KINDS
from server.merchant.coupon_admin import (MAX_CODES_PER_UPLOAD, MAX_UPLOAD_BYTES, CouponUpdate, coupon_as_json, update_coupon, upload_codes)
from server.core.kinds import KIND_LABELS
from server.merchant.doors import render_page
from server.merchant.onsite_admin import ONSITE_COUPON_KIND
from server.core.validation import parse

bp = Blueprint("coupons", __name__)

# Every push kind's source, and the on-site messages' own (a message may also use a kind's).
COUPON_KINDS = (*ALL_KINDS, ONSITE_COUPON_KIND)
COUPON_LABELS = {**KIND_LABELS, ONSITE_COUPON_KIND: "On-site messages"}


@bp.before_app_request
def _upload_limits() -> None:
    # Before the blueprint's CSRF guard reads the form: a list of 10,000 codes is bigger than
    # the other forms may be.
    if request.endpoint == "dashboard.coupons.upload_coupon_codes":
        request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024
        request.max_form_memory_size = MAX_UPLOAD_BYTES + 64 * 1024


@bp.get("/coupons")
def coupons() -> str:
    """Every kind's coupon source, with how many list codes are left and given out."""
    sources = [coupon_as_json(get_session(), g.shop, kind) for kind in COUPON_KINDS]
    return render_page("admin/coupons.html", sources=sources, max_codes=MAX_CODES_PER_UPLOAD, active="coupons",
                       coupon_labels=COUPON_LABELS)


@bp.post("/coupons/<kind>")
def save_coupon(kind: str) -> Response:
    """Save one kind's mode and fixed code."""
    if kind not in COUPON_KINDS:
        abort(404)
    raw: dict[str, Any] = {"mode": request.form.get("mode", ""), "code": request.form.get("code", "")}
    try:
        update_coupon(get_session(), g.shop, kind, parse(CouponUpdate, raw), get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"{COUPON_LABELS[kind]} coupon: {exc.message}", "error")
        return redirect(url_for("dashboard.coupons.coupons", _anchor=f"coupon-{kind}"))
    flash(f"{COUPON_LABELS[kind]} coupon saved.", "ok")
    return redirect(url_for("dashboard.coupons.coupons", _anchor=f"coupon-{kind}"))


@bp.post("/coupons/<kind>/codes")
def upload_coupon_codes(kind: str) -> Response:
    """Add single-use codes from the text box and/or an uploaded text file (one per line)."""
    if kind not in COUPON_KINDS:
        abort(404)
    lines = request.form.get("codes", "").splitlines()
    upload = request.files.get("codes_file")
    if upload is not None and upload.filename:
        lines += upload.read(MAX_UPLOAD_BYTES + 1).decode("utf-8", errors="replace").splitlines()
    try:
        result = upload_codes(get_session(), g.shop, kind, lines, get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"{COUPON_LABELS[kind]} codes not added: {exc.message}", "error")
        return redirect(url_for("dashboard.coupons.coupons", _anchor=f"coupon-{kind}"))
    flash(f"{COUPON_LABELS[kind]}: {result['added']} code(s) added, {result['skipped']} already there; "
          f"{result['remaining']} left.", "ok")
    return redirect(url_for("dashboard.coupons.coupons", _anchor=f"coupon-{kind}"))
