"""The dashboard's Experiments and Lift pages (routes on the dashboard blueprint, so its log-in,
CSRF check and headers apply). Thin: the forms become the API's bodies, the services decide."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, g, redirect, request, url_for

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.core.models import KINDS
from server.merchant import experiment_admin as service, onsite_admin as onsite
from server.merchant.doors import render_page
from server.reports.lift import lift_report
from server.reports.stats import parse_range
from server.planning.experiments import VARIANT_FIELDS, VARIANT_KEYS, onsite_kind

# Transactional ``shipped`` is not offered for tests of texts on the page (the API allows it).
TESTABLE = tuple(k for k in KINDS if k != "shipped")

bp = Blueprint("experiments", __name__)


def _number(raw: str | None, kind: type = int) -> Any:
    raw = (raw or "").strip()
    try:
        return kind(raw) if raw else None
    except ValueError:
        return raw  # the service refuses it with a clear message


@bp.get("/experiments")
def experiments_page() -> str:
    """Every experiment with its results, and the form for a new one."""
    session = get_session()
    items = []
    for experiment in service.list_experiments(session, g.shop):
        items.append({**experiment, "results": service.experiment_results(session, g.shop, experiment["id"])})
    # On-site messages are tested like pushes: their kind is ``onsite:{id}``.
    onsite_labels = {onsite_kind(m.id): f"On-site: {m.name}" for m in onsite.list_messages(session, g.shop)}
    return render_page("admin/experiments.html", items=items, kinds=TESTABLE, variant_keys=VARIANT_KEYS,
                 variant_fields=VARIANT_FIELDS, onsite_labels=onsite_labels, active="experiments")


@bp.post("/experiments")
def experiments_create() -> Response:
    """Start an experiment from the form (empty variants are left out)."""
    form = request.form
    variants = []
    for key in VARIANT_KEYS:
        fields = {name: form.get(f"{key}_{name}", "") for name in VARIANT_FIELDS}
        if any(v.strip() for v in fields.values()):
            variants.append(fields)
    body = {"kind": form.get("kind", ""), "name": form.get("name", "").strip() or None, "variants": variants,
            "slice_percent": _number(form.get("slice_percent")), "goal": form.get("goal") or None,
            "confidence": _number(form.get("confidence"), float), "min_sends": _number(form.get("min_sends")),
            "auto_apply": form.get("auto_apply") == "1"}
    try:
        created = service.create_experiment(get_session(), g.shop, {k: v for k, v in body.items() if v is not None},
                                            get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"Experiment not started: {exc.message}", "error")
        return redirect(url_for("dashboard.experiments.experiments_page"))
    flash(f"Experiment “{created['name']}” started.", "ok")
    return redirect(url_for("dashboard.experiments.experiments_page", _anchor=f"experiment-{created['id']}"))


@bp.post("/experiments/<int:experiment_id>")
def experiments_action(experiment_id: int) -> Response:
    """Stop, restart or apply an experiment."""
    action = request.form.get("action")
    try:
        if action == "apply":
            variant = request.form.get("variant") or None
            done = service.apply_experiment(get_session(), g.shop, experiment_id,
                                            {"variant": variant} if variant else {}, get_clock().now())
            flash(f"Variant {done['winner']} now goes to everyone.", "ok")
        elif action in ("stopped", "running"):
            service.update_experiment(get_session(), g.shop, experiment_id, {"status": action}, get_clock().now())
            flash("Experiment stopped." if action == "stopped" else "Experiment running again.", "ok")
        else:
            flash("Unknown action.", "error")
    except ApiError as exc:
        get_session().rollback()
        flash(f"Experiment: {exc.message}", "error")
    return redirect(url_for("dashboard.experiments.experiments_page", _anchor=f"experiment-{experiment_id}"))


@bp.get("/lift")
def lift_page() -> str:
    """The lift report of one kind over a date range, and the holdout percentages."""
    kind = request.args.get("kind") or "checkout_recovery"
    kind = kind if kind in KINDS else "checkout_recovery"
    try:
        rng = parse_range(request.args.get("from"), request.args.get("to"), get_clock().now())
        error = None
    except ApiError as exc:
        rng, error = parse_range(None, None, get_clock().now()), exc.message
    report = lift_report(get_session(), g.shop, kind, rng)
    return render_page("admin/lift.html", report=report, kind=kind, kinds=KINDS, error=error,
                 holdouts=service.holdouts(get_session(), g.shop), active="lift")


@bp.post("/lift/holdouts")
def lift_holdouts() -> Response:
    """Save the holdout percentage of every kind."""
    try:
        for kind in KINDS:
            raw = request.form.get(f"holdout_{kind}")
            if raw is not None:
                service.set_holdout(get_session(), g.shop, kind, {"percent": _number(raw)}, get_clock().now())
    except ApiError as exc:
        get_session().rollback()
        flash(f"Holdouts not saved: {exc.message}", "error")
        return redirect(url_for("dashboard.experiments.lift_page"))
    flash("Holdouts saved.", "ok")
    return redirect(url_for("dashboard.experiments.lift_page", kind=request.form.get("kind") or None))


