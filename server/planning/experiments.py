"""A/B tests of preset texts and holdout slices, decided per subscription at plan time.

Both assignments are deterministic, so planning the same thing twice (or in another process)
always gives the same answer, and nothing has to be stored to remember it:

- **holdout**: ``bucket("holdout:{shop}:{kind}:{subscription}") < percent × 100`` — the
  subscription gets no push of the kind; its row is stored ``skipped`` with ``error="holdout"``
  (never sent, never counted as sent), which is what the lift report counts as "held out and
  exposed to the trigger".
- **experiment**: ``bucket("experiment:{id}:{subscription}") < slice_percent × 100`` puts the
  subscription in the test; a second, independent digest of the same key picks the variant
  (uniformly among 2 to 4). The rest get the kind's own texts.

``bucket`` is the first 8 bytes of a SHA-256 digest modulo 10,000, so percentages have a
resolution of 0.01 %. ``choose_variant`` takes any object with ``id``, ``slice_percent`` and
``variants``, so campaigns can call it with their own experiments later.

The winner is chosen by ``results`` (``server.core.significance``): by click rate with a
pooled two-proportion z-test, or by attributed revenue per push with Welch's t-test, each
best variant against every other, two-sided, Bonferroni-corrected over the comparisons.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from server.core import significance
from server.core.models import Experiment, Holdout, OnsiteImpression, OnsiteMessage, Order, Push, PushStatus, Shop
from server.planning.defaults import get_setting

log = logging.getLogger(__name__)

BUCKETS = 10_000
RUNNING = "running"
# An on-site message's experiment has the kind ``onsite:{message_id}``: its variants replace the
# message's title, text (``body``), link (``url``) and image per visitor, and its figures are
# the showings (``sent``), the clicks and replies, and the orders paid within the attribution
# window after a showing (``server.collect.onsite`` records the variant on each showing).
ONSITE_PREFIX = "onsite:"
ONSITE_FIELDS = {"title": "title", "body": "text", "url": "cta_url", "image": "image"}


def onsite_kind(message_id: int) -> str:
    """The experiment kind of on-site message ``message_id``."""
    return f"{ONSITE_PREFIX}{message_id}"


def onsite_message_id(kind: str) -> int | None:
    """The on-site message an experiment kind names, or None for a push kind."""
    if kind.startswith(ONSITE_PREFIX) and kind[len(ONSITE_PREFIX):].isdigit():
        return int(kind[len(ONSITE_PREFIX):])
    return None
HOLDOUT_REASON = "holdout"
VARIANT_KEYS = ("A", "B", "C", "D")
VARIANT_FIELDS = ("title", "body", "url", "image")
AUDIENCE_CACHE = "pushcart_audiences"
AUDIENCE_TTL = timedelta(seconds=30)
AUTO_APPLY_EVERY = timedelta(minutes=10)
TEST_NAMES = {
    "clicks": "two-proportion z-test (pooled), two-sided, on unique clicks ÷ pushes sent",
    "revenue": "Welch's t-test (unequal variances), two-sided, on attributed revenue per push sent",
}


class ExperimentLike(Protocol):
    """What ``choose_variant`` reads of an experiment (a preset's or, later, a campaign's)."""

    id: int
    slice_percent: int
    variants: Sequence[dict[str, str]]


def bucket(key: str, salt: str = "") -> int:
    """A stable number 0..9999 from ``key`` (``salt`` gives an independent second draw)."""
    digest = hashlib.sha256(f"{salt}{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_holdout(shop_id: int, kind: str, subscription_id: int, percent: int) -> bool:
    """Whether the subscription is in the kind's holdout slice of ``percent`` %."""
    return percent > 0 and bucket(f"holdout:{shop_id}:{kind}:{subscription_id}") < percent * BUCKETS // 100


def choose_variant(experiment: ExperimentLike, subscription_id: int) -> dict[str, str] | None:
    """The variant ``subscription_id`` gets in ``experiment``, or None when it is outside the slice."""
    variants = list(experiment.variants or [])
    if not variants:
        return None
    key = f"experiment:{experiment.id}:{subscription_id}"
    if bucket(key) >= experiment.slice_percent * BUCKETS // 100:
        return None
    return variants[bucket(key, salt="variant:") % len(variants)]


@dataclass(frozen=True)
class Audience:
    """How a kind's audience is split in one shop right now: its holdout and running experiment."""

    shop_id: int
    kind: str
    holdout_percent: int
    experiment: Experiment | None
    loaded_at: datetime

    def held_out(self, subscription_id: int) -> bool:
        return in_holdout(self.shop_id, self.kind, subscription_id, self.holdout_percent)

    def variant_for(self, subscription_id: int) -> dict[str, str] | None:
        return choose_variant(self.experiment, subscription_id) if self.experiment is not None else None


def audience(session: orm.Session, shop_id: int, kind: str, now: datetime) -> Audience:
    """The kind's split, read once per session and 30 s of plan time (a sweep plans many rows)."""
    cache: dict[tuple[int, str], Audience] = session.info.setdefault(AUDIENCE_CACHE, {})
    known = cache.get((shop_id, kind))
    if known is not None and timedelta(0) <= now - known.loaded_at < AUDIENCE_TTL:
        return known
    percent = session.scalar(sa.select(Holdout.percent).where(Holdout.shop_id == shop_id, Holdout.kind == kind))
    experiment = session.scalars(
        sa.select(Experiment)
        .where(Experiment.shop_id == shop_id, Experiment.kind == kind, Experiment.status == RUNNING)
        .order_by(Experiment.id.desc()).limit(1)
    ).first()
    cache[(shop_id, kind)] = found = Audience(shop_id, kind, int(percent or 0), experiment, now)
    return found


def forget_audiences(session: orm.Session) -> None:
    """Drop the cached splits (a holdout or an experiment changed in this session)."""
    session.info.pop(AUDIENCE_CACHE, None)


# --- results ----------------------------------------------------------------------------------


def _figures(experiment: Experiment, sent: dict[str, int], clicked: dict[str, int],
             per_unit: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    figures = {}
    for variant in experiment.variants:
        key = variant["key"]
        n_sent = int(sent.get(key, 0))
        n_clicked = int(clicked.get(key, 0))
        values = per_unit.get(key, [])
        money = sum((Decimal(str(v)) for v in values), Decimal(0)).quantize(Decimal("0.01"))
        figures[key] = {
            "variant": key, "sent": n_sent, "clicks": n_clicked,
            "ctr": round(min(n_clicked / n_sent, 1.0), 4) if n_sent else 0.0,
            "orders": 0, "revenue": str(money),
            "revenue_per_push": str((money / n_sent).quantize(Decimal("0.01"))) if n_sent else "0.00",
            "_revenue_values": values,
        }
    return figures


def _onsite_figures(session: orm.Session, experiment: Experiment) -> dict[str, dict[str, Any]]:
    """An on-site experiment's figures: showings as ``sent``, clicks and replies as ``clicks``, and
    each paid order of a shown visitor within the attribution window credited to their latest
    showing of this experiment."""
    shop = session.get(Shop, experiment.shop_id)
    window = timedelta(hours=shop.attribution_hours if shop else 72)
    showings = session.execute(
        sa.select(OnsiteImpression.id, OnsiteImpression.visitor_id, OnsiteImpression.shown_at, OnsiteImpression.variant,
                  sa.or_(OnsiteImpression.clicked_at.is_not(None), OnsiteImpression.reply_tag.is_not(None)))
        .where(OnsiteImpression.shop_id == experiment.shop_id, OnsiteImpression.experiment_id == experiment.id)).all()
    sent: dict[str, int] = {}
    clicked: dict[str, int] = {}
    by_visitor: dict[int, list[Any]] = {}
    for showing in showings:
        sent[showing.variant] = sent.get(showing.variant, 0) + 1
        clicked[showing.variant] = clicked.get(showing.variant, 0) + int(bool(showing[4]))
        by_visitor.setdefault(showing.visitor_id, []).append(showing)
    revenue: dict[int, Decimal] = {}
    orders: dict[str, int] = {}
    if by_visitor:
        for visitor_id, paid_at, total in session.execute(
                sa.select(Order.visitor_id, Order.paid_at, Order.total)
                .where(Order.shop_id == experiment.shop_id, Order.status == "paid",
                       Order.visitor_id.in_(list(by_visitor)))):
            within = [s for s in by_visitor[visitor_id] if paid_at - window <= s.shown_at <= paid_at]
            if within:
                latest = max(within, key=lambda s: (s.shown_at, s.id))
                revenue[latest.id] = revenue.get(latest.id, Decimal(0)) + Decimal(total)
                orders[latest.variant] = orders.get(latest.variant, 0) + 1
    per_showing: dict[str, list[float]] = {}
    for showing in showings:
        if showing.id in revenue:
            per_showing.setdefault(showing.variant, []).append(float(revenue[showing.id]))
    figures = _figures(experiment, sent, clicked, per_showing)
    for key, row in figures.items():
        row["orders"] = orders.get(key, 0)
    return figures


def _variant_figures(session: orm.Session, experiment: Experiment) -> dict[str, dict[str, Any]]:
    if onsite_message_id(experiment.kind) is not None:
        return _onsite_figures(session, experiment)
    in_test = sa.and_(Push.shop_id == experiment.shop_id, Push.experiment_id == experiment.id)
    sent = dict(session.execute(
        sa.select(Push.variant, sa.func.count())
        .where(in_test, Push.status == PushStatus.SENT.value).group_by(Push.variant)).all())
    clicked = dict(session.execute(
        sa.select(Push.variant, sa.func.count())
        .where(in_test, Push.clicked_at.is_not(None)).group_by(Push.variant)).all())
    per_push: dict[str, list[float]] = {}
    orders: dict[str, int] = {}
    revenue: dict[str, Decimal] = {}
    for variant, n, total in session.execute(
        sa.select(Push.variant, sa.func.count(Order.id), sa.func.sum(Order.total))
        .join(Order, Order.attributed_push_id == Push.id)
        .where(in_test, Order.shop_id == experiment.shop_id, Order.status == "paid")
        .group_by(Push.id, Push.variant)
    ).all():
        per_push.setdefault(variant, []).append(float(total or 0))
        orders[variant] = orders.get(variant, 0) + n
        revenue[variant] = revenue.get(variant, Decimal(0)) + Decimal(total or 0)
    figures = {}
    for variant in experiment.variants:
        key = variant["key"]
        n_sent = int(sent.get(key, 0))
        n_clicked = int(clicked.get(key, 0))
        money = revenue.get(key, Decimal(0)).quantize(Decimal("0.01"))
        figures[key] = {
            "variant": key, "sent": n_sent, "clicks": n_clicked,
            "ctr": round(min(n_clicked / n_sent, 1.0), 4) if n_sent else 0.0,
            "orders": orders.get(key, 0), "revenue": str(money),
            "revenue_per_push": str((money / n_sent).quantize(Decimal("0.01"))) if n_sent else "0.00",
            "_revenue_values": per_push.get(key, []),
        }
    return figures


def _compare(goal: str, best: dict[str, Any], other: dict[str, Any]) -> significance.TestResult:
    if goal == "revenue":
        return significance.welch_t_test(
            significance.Sample.of(best["_revenue_values"], best["sent"]),
            significance.Sample.of(other["_revenue_values"], other["sent"]))
    return significance.two_proportion_z_test(best["clicks"], best["sent"], other["clicks"], other["sent"])


def results(session: orm.Session, experiment: Experiment) -> dict[str, Any]:
    """Per variant: sent, clicks, CTR, orders, revenue, revenue per push; the test, its p-values
    and the winner, or why there is none yet (``"not yet significant"``, ``"too few sends"``)."""
    figures = _variant_figures(session, experiment)
    rows = list(figures.values())
    goal = experiment.goal

    def score(row: dict[str, Any]) -> float:
        return float(Decimal(row["revenue_per_push"])) if goal == "revenue" else row["ctr"]

    # The best by the goal; ties go to the earlier variant (stable: max keeps the first).
    best = max(rows, key=score) if rows else None
    comparisons = max(len(rows) - 1, 1)
    alpha = 1 - experiment.confidence
    threshold = alpha / comparisons
    tests = []
    for row in rows:
        if best is None or row is best:
            continue
        outcome = _compare(goal, best, row)
        tests.append({"variant": best["variant"], "against": row["variant"],
                      "statistic": round(outcome.statistic, 4), "p_value": round(outcome.p_value, 6),
                      "df": round(outcome.df, 2) if outcome.df is not None else None,
                      "significant": outcome.p_value < threshold})
    enough = bool(rows) and all(row["sent"] >= experiment.min_sends for row in rows)
    significant = bool(tests) and all(t["significant"] for t in tests) and score(best) > max(
        (score(r) for r in rows if r is not best), default=0)
    winner = best["variant"] if best is not None and enough and significant else None
    if winner:
        verdict = "winner"
    elif not enough:
        verdict = "too few sends"
    else:
        verdict = "not yet significant"
    for row in rows:
        row.pop("_revenue_values")
    return {
        "experiment_id": experiment.id,
        "goal": goal,
        "test": TEST_NAMES[goal],
        "correction": f"Bonferroni: each of the {comparisons} comparison(s) of the best variant "
                      f"against another must have p < {round(threshold, 6)}",
        "confidence": experiment.confidence,
        "alpha": round(alpha, 6),
        "min_sends": experiment.min_sends,
        "best": best["variant"] if best else None,
        "comparisons": tests,
        "p_value": max((t["p_value"] for t in tests), default=1.0),
        "winner": winner,
        "verdict": winner if winner else verdict,
        "status": verdict,
        "variants": rows,
    }


# --- applying a winner ------------------------------------------------------------------------


def apply_variant(session: orm.Session, experiment: Experiment, key: str, now: datetime) -> None:
    """Copy variant ``key``'s texts into the kind's settings and end the experiment (``applied``).

    A variant's non-empty fields replace the kind's; for a series (checkout recovery) its title
    and body also clear the steps' own title and body, as they replaced them during the test.
    Rows already planned keep their texts (as for any settings change).
    """
    variant = next((v for v in experiment.variants if v["key"] == key), None)
    if variant is None:
        raise KeyError(key)
    message_id = onsite_message_id(experiment.kind)
    if message_id is not None:  # an on-site message's texts
        message = session.get(OnsiteMessage, message_id)
        if message is not None and message.shop_id == experiment.shop_id:
            content = dict(message.content or {})
            for name, field in ONSITE_FIELDS.items():
                if variant.get(name):
                    content[field] = variant[name]
            if variant.get("url"):
                content["optin"] = False
            message.content, message.updated_at = content, now
    else:
        _apply_to_preset(session, experiment, variant, now)
    experiment.status = "applied"
    experiment.winner = key
    experiment.applied_at = now
    experiment.updated_at = now
    forget_audiences(session)
    session.flush()
    log.info("experiment %s (shop %s, %s): variant %s applied", experiment.id, experiment.shop_id,
             experiment.kind, key)


def _apply_to_preset(session: orm.Session, experiment: Experiment, variant: dict[str, str], now: datetime) -> None:
    shop = session.get(Shop, experiment.shop_id)
    setting = get_setting(session, shop, experiment.kind)
    for name in VARIANT_FIELDS:
        if variant.get(name):
            setattr(setting, name, variant[name])
    if setting.steps:
        setting.steps = [{"title": "" if variant.get("title") else step.get("title", ""),
                          "body": "" if variant.get("body") else step.get("body", "")}
                         for step in setting.steps]
    setting.updated_at = now


def auto_apply(session: orm.Session, now: datetime) -> int:
    """Apply the winner of each running auto-apply experiment that has one (checked at most
    every 10 minutes per experiment); return how many were applied."""
    due = list(session.scalars(
        sa.select(Experiment).where(
            Experiment.status == RUNNING, Experiment.auto_apply.is_(True),
            sa.or_(Experiment.evaluated_at.is_(None), Experiment.evaluated_at <= now - AUTO_APPLY_EVERY))
        .order_by(Experiment.id).limit(50)))
    applied = 0
    for experiment in due:
        experiment.evaluated_at = now
        winner = results(session, experiment)["winner"]
        if winner:
            apply_variant(session, experiment, winner, now)
            applied += 1
    return applied
