"""The dashboard's test devices: subscribe this browser, remove a device, and "Send a test to my
devices" from a preset (Events), a campaign, an experiment's variant and an on-site message.

Behind ``doors.dashboard`` (log-in, CSRF on every POST, the pages' headers). The browser
registers ``/admin/test-devices/sw.js`` (the shop's own service worker source, scoped to
``/admin/``) and subscribes with the shop's VAPID key (``static/admin/test_devices.js``).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, request, url_for

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.embed import worker_source
from server.core.errors import ApiError
from server.core.kinds import KIND_LABELS
from server.core.validation import parse, read_json
from server.core.vapid_keys import current_key
from server.delivery.push.vapid import get_vapid, public_key_b64
from server.merchant import test_devices as service
from server.outbox import plan as outbox

bp = Blueprint("test_devices", __name__)

WORKER_SCOPE = "/admin/"


def application_server_key() -> str:
    """The VAPID public key the shop's pushes are signed with (its own, else the instance's)."""
    key = current_key(get_session(), g.shop.id)
    return key.public_key if key is not None else public_key_b64(get_vapid(current_app))


@bp.get("/test-devices/sw.js")
def worker() -> Response:
    """The service worker a test device runs: the shop's worker source, served on the dashboard."""
    return Response(worker_source(current_app.config["PUBLIC_URL"]) + "\n", mimetype="text/javascript",
                    headers={"Service-Worker-Allowed": WORKER_SCOPE})


@bp.post("/test-devices")
def add() -> tuple[Response, int]:
    """Store the posted subscription (JSON, CSRF in ``X-CSRFToken``) as a test device."""
    try:
        data = parse(service.TestDeviceIn, read_json(request))
        device = service.register_test_device(get_session(), g.shop, data, current_app.config, get_clock().now(),
                                              instance_key=public_key_b64(get_vapid(current_app)))
    except ApiError as exc:
        get_session().rollback()
        return jsonify({"error": {"code": exc.code, "message": exc.message}}), exc.status
    flash(f"“{device.name}” is a test device now: test pushes from Events, Campaigns and Experiments reach it.",
          "ok")
    return jsonify({"id": device.id, "name": device.name}), 201


@bp.post("/test-devices/<int:device_id>/remove")
def remove(device_id: int) -> Response:
    """Remove one test device."""
    try:
        service.remove_test_device(get_session(), g.shop, device_id)
        flash("Test device removed.", "ok")
    except ApiError as exc:
        flash(f"Test device: {exc.message}", "error")
    return redirect(url_for("dashboard.pages.settings", _anchor="test-devices"))


def _send(content: Any, back: str) -> Response:
    """Send ``content`` (a rendering, or a callable that makes one) to the devices; flash the outcome."""
    session = get_session()
    try:
        rendered: outbox.Rendered = content() if callable(content) else content
        count = service.send_to_test_devices(session, g.shop, rendered, get_clock().now())
    except ApiError as exc:
        session.rollback()
        flash(f"Test push: {exc.message}", "error")
        return redirect(back)
    flash(f"Test push on its way to {count} test device{'' if count == 1 else 's'}.", "ok")
    return redirect(back)


@bp.post("/test-devices/send/preset/<kind>")
def send_preset(kind: str) -> Response:
    """A preset's saved texts, with sample data, to the test devices."""
    back = url_for("dashboard.pages.events", _anchor=kind if kind in KIND_LABELS else None)
    return _send(lambda: service.preset_content(get_session(), g.shop, kind), back)


@bp.post("/test-devices/send/campaign/<int:campaign_id>")
def send_campaign(campaign_id: int) -> Response:
    """A campaign's saved texts, for a sample subscriber, to the test devices."""
    back = url_for("dashboard.campaigns.campaign", campaign_id=campaign_id)
    return _send(lambda: service.campaign_content(get_session(), g.shop, campaign_id), back)


@bp.post("/test-devices/send/experiment/<int:experiment_id>/<key>")
def send_variant(experiment_id: int, key: str) -> Response:
    """One variant of an experiment, over its kind's texts, to the test devices."""
    back = url_for("dashboard.experiments.experiments_page", _anchor=f"experiment-{experiment_id}")
    return _send(lambda: service.variant_content(get_session(), g.shop, experiment_id, key[:8]), back)


@bp.post("/test-devices/send/onsite/<int:message_id>")
def send_onsite(message_id: int) -> Response:
    """An on-site message's preview push (its click shows the message on the shop's page) to the test devices."""
    back = url_for("dashboard.onsite.onsite_edit", message_id=message_id)
    return _send(lambda: service.onsite_content(get_session(), g.shop, message_id, current_app.secret_key,
                                                get_clock().now()), back)
