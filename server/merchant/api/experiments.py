"""The merchant API for A/B tests and proof of lift (``Authorization: Bearer <admin_token>``).

``/v1/admin/experiments`` (list, create), ``/v1/admin/experiments/{id}`` (read, change),
``/v1/admin/experiments/{id}/apply``, ``/v1/admin/experiments/{id}/results``,
``/v1/admin/holdouts`` and ``/v1/admin/holdouts/{kind}``, ``/v1/admin/lift?kind=&from=&to=``.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.validation import read_json
from server.merchant import experiment_admin as service
from server.reports.lift import check_kind, lift_report
from server.reports.stats import parse_range

bp = Blueprint("experiments", __name__)


def _body() -> Any:
    return read_json(request) if request.get_data(cache=True) else {}


@bp.get("/experiments")
def list_experiments() -> Any:
    """The shop's experiments, newest first."""
    return jsonify({"items": service.list_experiments(get_session(), g.shop)})


@bp.post("/experiments")
def create_experiment() -> Any:
    """Start an experiment: ``{"kind", "name"?, "variants": [...], "slice_percent"?, "goal"?,
    "confidence"?, "min_sends"?, "auto_apply"?}``."""
    return service.create_experiment(get_session(), g.shop, read_json(request), get_clock().now()), 201


@bp.get("/experiments/<int:experiment_id>")
def get_experiment(experiment_id: int) -> dict[str, Any]:
    """One experiment."""
    return service.experiment_as_json(service.get_experiment(get_session(), g.shop, experiment_id))


@bp.put("/experiments/<int:experiment_id>")
def put_experiment(experiment_id: int) -> dict[str, Any]:
    """Change an experiment (partial update; ``status`` ``running``/``stopped``)."""
    return service.update_experiment(get_session(), g.shop, experiment_id, read_json(request), get_clock().now())


@bp.post("/experiments/<int:experiment_id>/apply")
def apply_experiment(experiment_id: int) -> dict[str, Any]:
    """Send the winner's (or the named variant's) texts to everyone from now on."""
    return service.apply_experiment(get_session(), g.shop, experiment_id, _body(), get_clock().now())


@bp.get("/experiments/<int:experiment_id>/results")
def experiment_results(experiment_id: int) -> dict[str, Any]:
    """Per variant figures, the test used, its p-values and the winner (or why not yet)."""
    return service.experiment_results(get_session(), g.shop, experiment_id)


@bp.get("/holdouts")
def list_holdouts() -> dict[str, Any]:
    """Each kind's holdout percentage."""
    return {"holdouts": service.holdouts(get_session(), g.shop)}


@bp.put("/holdouts/<kind>")
def put_holdout(kind: str) -> dict[str, Any]:
    """Set a kind's holdout percentage: ``{"percent": 0..50}``."""
    return service.set_holdout(get_session(), g.shop, kind, read_json(request), get_clock().now())


@bp.get("/lift")
def get_lift() -> dict[str, Any]:
    """Treated against holdout for ``kind`` over ``from``..``to`` (UTC days; default the last 30)."""
    kind = check_kind(request.args.get("kind"))
    rng = parse_range(request.args.get("from"), request.args.get("to"), get_clock().now())
    return lift_report(get_session(), g.shop, kind, rng)
