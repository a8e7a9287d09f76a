"""The soft-ask designer (``/admin/settings/soft-ask``), a page under Settings.

A child of ``doors.dashboard``: the door's log-in guard, the CSRF check of every POST (the
preview's JSON carries the token in ``X-CSRFToken``) and the pages' CSP apply. The preview is
the markup and style the widget gets (``server.collect.softask``), put into a shadow root in a
phone or desktop frame by ``static/admin/softask.js``.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from server.collect.softask import POSITION_LABELS
from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.merchant import audit
from server.merchant.doors import current_actor, render_page
from server.merchant.shop_admin import prompt_as_json
from server.merchant.softask_admin import design_from_form, preview, save_design

bp = Blueprint("softask", __name__)


@bp.get("/settings/soft-ask")
def designer() -> str:
    """The designer's form with its live preview, filled with the stored design."""
    prompt = prompt_as_json(g.shop.prompt)
    return render_page("admin/softask.html", prompt=prompt, first=preview(g.shop, {}),
                       positions=POSITION_LABELS, active="settings")


@bp.post("/settings/soft-ask")
def save() -> Response:
    """Save the design (the timing and the languages stay as Settings has them)."""
    try:
        with audit.settings_change(get_session(), g.shop, current_actor(), get_clock().now()):
            save_design(g.shop, design_from_form(request.form))
        get_session().flush()
    except ApiError as exc:
        get_session().rollback()
        flash(f"Soft-ask not saved: {exc.message}", "error")
        return redirect(url_for("dashboard.softask.designer"))
    flash("Soft-ask saved: visitors see it from their next page view.", "ok")
    return redirect(url_for("dashboard.softask.designer"))


@bp.post("/settings/soft-ask/preview")
def preview_design() -> Any:
    """The soft-ask's ``html`` and ``css`` for the form's current values (JSON in, JSON out)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": {"code": "malformed", "message": "a JSON object is needed"}}), 400
    return jsonify(preview(g.shop, design_from_form(data)))
