"""A/B tests of preset texts and holdout slices: the merchant's settings for them.

The merchant API (``/v1/admin/experiments``, ``/v1/admin/holdouts/{kind}``) and the dashboard
call these. Variant templates are checked like the kind's own when saved. The assignment and
the statistics live in ``server.planning.experiments``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import orm

from server.core.errors import Invalid, NotFound
from server.core.fields import http_url
from server.core.models import KINDS, Experiment, Holdout, OnsiteImpression, OnsiteMessage, Push, Shop
from server.core.validation import parse
from server.merchant.presets import check_template
from server.planning import experiments as planning
from server.planning import templates

MAX_HOLDOUT = 50
STATUSES = ("running", "stopped")  # ``applied`` is reached through apply only


class VariantIn(BaseModel):
    """One variant's templates; an empty field uses the kind's own."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = None  # given back by GET; the position decides (A, B, C, D)
    title: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)
    body: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)
    url: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)
    image: str = Field(default="", max_length=templates.MAX_TEMPLATE_CHARS)


class ExperimentIn(BaseModel):
    """A new experiment, or a partial update of one (absent fields are left alone)."""

    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    variants: list[VariantIn] | None = Field(default=None, min_length=2, max_length=4)
    slice_percent: StrictInt | None = Field(default=None, ge=1, le=100)
    goal: Literal["clicks", "revenue"] | None = None
    confidence: float | None = Field(default=None, ge=0.8, le=0.999)
    min_sends: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    auto_apply: StrictBool | None = None
    status: Literal["running", "stopped"] | None = None


class HoldoutIn(BaseModel):
    """A kind's holdout percentage."""

    model_config = ConfigDict(extra="forbid")
    percent: StrictInt = Field(ge=0, le=MAX_HOLDOUT)


class ApplyIn(BaseModel):
    """Which variant to apply; without one, the significant winner."""

    model_config = ConfigDict(extra="forbid")
    variant: Literal["A", "B", "C", "D"] | None = None


def experiment_as_json(experiment: Experiment) -> dict[str, Any]:
    """An experiment in the API's shape."""
    return {
        "id": experiment.id,
        "kind": experiment.kind,
        "name": experiment.name,
        "status": experiment.status,
        "variants": [dict(v) for v in experiment.variants],
        "slice_percent": experiment.slice_percent,
        "goal": experiment.goal,
        "confidence": experiment.confidence,
        "min_sends": experiment.min_sends,
        "auto_apply": experiment.auto_apply,
        "winner": experiment.winner,
        "created_at": experiment.created_at.isoformat(),
        "updated_at": experiment.updated_at.isoformat(),
        "applied_at": experiment.applied_at.isoformat() if experiment.applied_at else None,
    }


def list_experiments(session: orm.Session, shop: Shop) -> list[dict[str, Any]]:
    """The shop's experiments, newest first."""
    return [experiment_as_json(e) for e in session.scalars(
        sa.select(Experiment).where(Experiment.shop_id == shop.id).order_by(Experiment.id.desc()))]


def get_experiment(session: orm.Session, shop: Shop, experiment_id: int) -> Experiment:
    """The shop's experiment ``experiment_id``; raises NotFound (also for another shop's)."""
    experiment = session.get(Experiment, experiment_id)
    if experiment is None or experiment.shop_id != shop.id:
        raise NotFound(f"no experiment {experiment_id}", code="unknown_experiment")
    return experiment


# An on-site message's variant fields are plain text (no template) and http(s) URLs, as the message's own.
ONSITE_LIMITS = {"title": 100, "body": 500}


def _onsite_field(index: int, name: str, value: str) -> str:
    value = value.strip()
    if name in ONSITE_LIMITS and len(value) > ONSITE_LIMITS[name]:
        raise Invalid(f"variants.{index}.{name}: at most {ONSITE_LIMITS[name]} characters", code="invalid_field")
    if name in ("url", "image") and value and http_url(value) is None:
        raise Invalid(f"variants.{index}.{name}: must be an absolute http(s) URL", code="invalid_field")
    return value


def check_kind(session: orm.Session, shop: Shop, kind: str | None) -> str:
    """A kind an experiment may test: a preset kind, or ``onsite:{id}`` of one of the shop's
    on-site messages; raises Invalid."""
    message_id = planning.onsite_message_id(kind or "")
    if kind in KINDS or (message_id is not None and session.scalar(sa.select(OnsiteMessage.id).where(
            OnsiteMessage.shop_id == shop.id, OnsiteMessage.id == message_id))):
        return str(kind)
    raise Invalid(f"kind: one of {', '.join(KINDS)}, or onsite:<id> of an on-site message", code="invalid_field")


def _variants(variants: list[VariantIn], kind: str = "") -> list[dict[str, str]]:
    checked = []
    onsite = planning.onsite_message_id(kind) is not None
    for index, variant in enumerate(variants):
        key = planning.VARIANT_KEYS[index]
        fields = {name: (_onsite_field(index, name, getattr(variant, name)) if onsite
                         else check_template(f"variants.{index}.{name}", getattr(variant, name)))
                  for name in planning.VARIANT_FIELDS}
        if not any(value.strip() for value in fields.values()):
            raise Invalid(f"variants.{index}: a variant changes at least one of {', '.join(planning.VARIANT_FIELDS)}",
                          code="invalid_field")
        checked.append({"key": key, **fields})
    return checked


def _refuse_second_running(session: orm.Session, shop: Shop, kind: str, experiment_id: int | None) -> None:
    other = session.scalar(sa.select(Experiment.id).where(
        Experiment.shop_id == shop.id, Experiment.kind == kind, Experiment.status == planning.RUNNING,
        Experiment.id != (experiment_id or 0)))
    if other is not None:
        raise Invalid(f"experiment {other} is already running on {kind}: stop it first", code="experiment_running")


def create_experiment(session: orm.Session, shop: Shop, raw: Any, now: datetime) -> dict[str, Any]:
    """Start an experiment on a preset kind or an on-site message (``onsite:{id}``); raises Invalid
    (a field, a template, another one running)."""
    data = parse(ExperimentIn, raw)
    check_kind(session, shop, data.kind)
    if data.variants is None:
        raise Invalid("variants: 2 to 4 variants are needed", code="invalid_field")
    status = data.status or planning.RUNNING
    if status == planning.RUNNING:
        _refuse_second_running(session, shop, data.kind, None)
    experiment = Experiment(
        shop_id=shop.id, kind=data.kind, name=data.name or f"{data.kind} test", status=status,
        variants=_variants(data.variants, data.kind or ""),
        slice_percent=data.slice_percent if data.slice_percent is not None else 20,
        goal=data.goal or "clicks", confidence=data.confidence if data.confidence is not None else 0.95,
        min_sends=data.min_sends if data.min_sends is not None else 200,
        auto_apply=bool(data.auto_apply), created_at=now, updated_at=now)
    session.add(experiment)
    session.flush()
    planning.forget_audiences(session)
    return experiment_as_json(experiment)


def update_experiment(session: orm.Session, shop: Shop, experiment_id: int, raw: Any,
                      now: datetime) -> dict[str, Any]:
    """Change an experiment (partial). Its variants are fixed once a row carries one of them;
    an applied experiment is final. Raises NotFound or Invalid."""
    experiment = get_experiment(session, shop, experiment_id)
    data = parse(ExperimentIn, {k: v for k, v in raw.items() if k not in ("id", "winner", "created_at",
                                                                        "updated_at", "applied_at")}
                 if isinstance(raw, dict) else raw)
    fields = {name for name in data.model_fields_set if getattr(data, name) is not None}
    if experiment.status == "applied":
        raise Invalid("this experiment was applied: start a new one", code="experiment_applied")
    if "kind" in fields and data.kind != experiment.kind:
        raise Invalid("kind: an experiment stays on its kind", code="invalid_field")
    if "variants" in fields:
        variants = _variants(data.variants or [], experiment.kind)
        if variants != experiment.variants and (session.scalar(
                sa.select(Push.id).where(Push.shop_id == shop.id, Push.experiment_id == experiment.id).limit(1))
                or session.scalar(sa.select(OnsiteImpression.id).where(
                    OnsiteImpression.shop_id == shop.id, OnsiteImpression.experiment_id == experiment.id).limit(1))):
            raise Invalid("variants: pushes were already planned with these variants; start a new experiment "
                          "to test other texts", code="variants_locked")
        experiment.variants = variants
    if data.status == planning.RUNNING and experiment.status != planning.RUNNING:
        _refuse_second_running(session, shop, experiment.kind, experiment.id)
    for name in ("name", "slice_percent", "goal", "confidence", "min_sends", "auto_apply", "status"):
        if name in fields:
            setattr(experiment, name, getattr(data, name))
    experiment.updated_at = now
    session.flush()
    planning.forget_audiences(session)
    return experiment_as_json(experiment)


def experiment_results(session: orm.Session, shop: Shop, experiment_id: int) -> dict[str, Any]:
    """The experiment's results (``planning.experiments.results``) with the experiment itself."""
    experiment = get_experiment(session, shop, experiment_id)
    return {**planning.results(session, experiment), "experiment": experiment_as_json(experiment),
            "currency": shop.currency}


def apply_experiment(session: orm.Session, shop: Shop, experiment_id: int, raw: Any,
                     now: datetime) -> dict[str, Any]:
    """Send a variant's texts to everyone: the named one (the merchant's call), or else the
    significant winner. Raises NotFound, or Invalid when there is no winner yet."""
    experiment = get_experiment(session, shop, experiment_id)
    choice = parse(ApplyIn, raw if raw is not None else {})
    if experiment.status == "applied":
        raise Invalid(f"variant {experiment.winner} was already applied", code="experiment_applied")
    key = choice.variant
    if key is None:
        found = planning.results(session, experiment)
        if not found["winner"]:
            raise Invalid(f"no winner yet ({found['status']}); name a variant to apply it anyway",
                          code="no_winner")
        key = found["winner"]
    if key not in {v["key"] for v in experiment.variants}:
        raise Invalid(f"variant: this experiment has no variant {key}", code="invalid_field")
    planning.apply_variant(session, experiment, key, now)
    return experiment_as_json(experiment)


def holdouts(session: orm.Session, shop: Shop) -> dict[str, int]:
    """Each kind's holdout percentage (0 when never set)."""
    found = dict(session.execute(sa.select(Holdout.kind, Holdout.percent).where(Holdout.shop_id == shop.id)).all())
    return {kind: int(found.get(kind, 0)) for kind in KINDS}


def set_holdout(session: orm.Session, shop: Shop, kind: str, raw: Any, now: datetime) -> dict[str, Any]:
    """Set a kind's holdout percentage (0-50); raises NotFound (kind) or Invalid."""
    if kind not in KINDS:
        raise NotFound(f"unknown kind {kind!r}", code="unknown_kind")
    data = parse(HoldoutIn, raw)
    holdout = session.scalars(sa.select(Holdout).where(Holdout.shop_id == shop.id, Holdout.kind == kind)).first()
    if holdout is None:
        holdout = Holdout(shop_id=shop.id, kind=kind, percent=data.percent, updated_at=now)
        session.add(holdout)
    holdout.percent, holdout.updated_at = data.percent, now
    session.flush()
    planning.forget_audiences(session)
    return {"kind": kind, "percent": holdout.percent}

