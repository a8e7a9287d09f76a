"""Proof of lift: a preset kind's treated subscriptions against its holdout, over a date range.

Intent to treat. A subscription is *exposed* when the kind's trigger planned a row for it in
the range (``created_at``), whatever became of the row: sent, cancelled by a later event,
capped, or held out (``skipped`` with ``error="holdout"``). Its group is that of its first
exposure in the range: *holdout* when that row was held out, *treated* otherwise. Test pushes
are left out by their kind (``test``, no preset kind). Judging by the trigger rather than by what was sent keeps the two groups alike:
a treated push cancelled because the visitor paid first still counts, as the same visitor
would in the holdout.

An order counts once, for the group of the subscription whose exposure it follows: the
visitor's latest exposure with ``exposed_at <= paid_at <= exposed_at + attribution_hours``
(not by click). Orders are read up to the window's end after the range, so exposures late in
the range get their whole window.

Per group: ``conversion_rate`` = subscriptions with an order ÷ exposed; ``revenue_per_exposed``
= revenue ÷ exposed. Incremental orders = (treated rate − holdout rate) × treated exposed, with
the normal-approximation interval for a difference of two proportions; incremental revenue =
(treated − holdout revenue per exposed) × treated exposed, with Welch's interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core import significance
from server.core.errors import Invalid
from server.core.models import KINDS, Order, Push, PushStatus, Shop
from server.reports.stats import DateRange, money
from server.planning.rendering import format_money
from server.planning.experiments import HOLDOUT_REASON

CONFIDENCE = 0.95
METHOD = {
    "unit": "subscription exposed to the kind's trigger (a row planned for it in the range, sent or not)",
    "orders": "paid orders within attribution_hours after the visitor's latest exposure, credited to its group",
    "orders_interval": "normal approximation for the difference of two proportions (conversion rates), "
                       "times the treated count",
    "revenue_interval": "Welch's t interval (unequal variances, Welch-Satterthwaite df) for the difference "
                        "of revenue per exposed subscription, times the treated count",
}


@dataclass
class _Group:
    exposed: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)
    per_subscription: dict[int, Decimal] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        converted = len(self.per_subscription)
        return {
            "exposed": self.exposed,
            "converted": converted,
            "orders": self.orders,
            "revenue": money(self.revenue),
            "conversion_rate": round(converted / self.exposed, 4) if self.exposed else 0.0,
            "revenue_per_exposed": money(self.revenue / self.exposed) if self.exposed else "0.00",
        }

    def sample(self) -> significance.Sample:
        return significance.Sample.of([float(v) for v in self.per_subscription.values()], self.exposed)


def check_kind(kind: str | None) -> str:
    """``kind`` when it is a preset kind; raises Invalid."""
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}", code="invalid_field")
    return kind


def _interval(value: significance.Interval, scale: float, places: int) -> dict[str, float]:
    return {"estimate": round(value.estimate * scale, places), "low": round(value.low * scale, places),
            "high": round(value.high * scale, places)}


def lift_report(session: orm.Session, shop: Shop, kind: str, rng: DateRange) -> dict[str, Any]:
    """Treated against holdout for ``kind`` over ``rng`` (see the module doc)."""
    window = timedelta(hours=shop.attribution_hours)
    exposures = session.execute(
        sa.select(Push.subscription_id, Push.visitor_id, Push.created_at, Push.status, Push.error)
        .where(Push.shop_id == shop.id, Push.kind == kind, Push.subscription_id.is_not(None),
               Push.visitor_id.is_not(None), Push.created_at >= rng.start, Push.created_at < rng.end)
        .order_by(Push.created_at, Push.id)
    ).all()
    groups = {"treated": _Group(), "holdout": _Group()}
    group_of: dict[int, str] = {}
    by_visitor: dict[int, list[tuple[datetime, int]]] = {}
    for subscription_id, visitor_id, created_at, status, error in exposures:
        if subscription_id not in group_of:
            held = status == PushStatus.SKIPPED.value and error == HOLDOUT_REASON
            group_of[subscription_id] = "holdout" if held else "treated"
            groups[group_of[subscription_id]].exposed += 1
        by_visitor.setdefault(visitor_id, []).append((created_at, subscription_id))
    if by_visitor:
        exposed_visitors = (sa.select(Push.visitor_id)
                            .where(Push.shop_id == shop.id, Push.kind == kind, Push.created_at >= rng.start,
                                   Push.created_at < rng.end).distinct())
        orders = session.execute(
            sa.select(Order.visitor_id, Order.paid_at, Order.total)
            .where(Order.shop_id == shop.id, Order.status == "paid", Order.visitor_id.in_(exposed_visitors),
                   Order.paid_at >= rng.start, Order.paid_at <= rng.end + window)
        ).all()
        for visitor_id, paid_at, total in orders:
            before = [(at, sub) for at, sub in by_visitor.get(visitor_id, []) if at <= paid_at <= at + window]
            if not before:
                continue
            subscription_id = max(before)[1]  # the latest exposure before the order
            group = groups[group_of[subscription_id]]
            group.orders += 1
            group.revenue += Decimal(total)
            group.per_subscription[subscription_id] = group.per_subscription.get(subscription_id, Decimal(0)) + Decimal(total)
    treated, holdout = groups["treated"], groups["holdout"]
    report: dict[str, Any] = {
        "kind": kind, "from": rng.first.isoformat(), "to": rng.last.isoformat(), "currency": shop.currency,
        "attribution_hours": shop.attribution_hours, "confidence": CONFIDENCE, "method": METHOD,
        "treated": treated.as_json(), "holdout": holdout.as_json(),
        "incremental_orders": None, "incremental_revenue": None,
        "conversion_rate_difference": None, "revenue_per_exposed_difference": None,
    }
    if treated.exposed and holdout.exposed:
        rates = significance.proportion_difference_interval(
            len(treated.per_subscription), treated.exposed, len(holdout.per_subscription), holdout.exposed, CONFIDENCE)
        revenue = significance.welch_interval(treated.sample(), holdout.sample(), CONFIDENCE)
        report["conversion_rate_difference"] = _interval(rates, 1, 4)
        report["revenue_per_exposed_difference"] = _interval(revenue, 1, 2)
        report["incremental_orders"] = _interval(rates, treated.exposed, 2)
        report["incremental_revenue"] = _interval(revenue, treated.exposed, 2)
    report["summary"] = summary(kind, report)
    return report


KIND_NAMES = {"welcome": "Welcome", "browse_abandonment": "Browse & cart abandonment",
              "checkout_recovery": "Checkout recovery", "repurchase": "Repurchase", "shipped": "Shipped"}


def _money(amount: float, currency: str) -> str:
    value = Decimal(str(amount))
    return ("-" if value < 0 else "") + format_money(abs(value), currency)


def summary(kind: str, report: dict[str, Any]) -> str:
    """The report in one plain sentence."""
    name = KIND_NAMES.get(kind, kind)
    orders, revenue = report["incremental_orders"], report["incremental_revenue"]
    if orders is None:
        missing = "held-out" if report["treated"]["exposed"] else "treated"
        return (f"{name}: no {missing} subscriptions were exposed in this range yet, so there is nothing to "
                f"compare. Set a holdout percentage and let the trigger fire.")
    currency = report["currency"]
    sentence = (f"{name} brought about {orders['estimate']:.0f} extra orders "
                f"(95% CI {orders['low']:.0f} to {orders['high']:.0f}) and "
                f"{_money(revenue['estimate'], currency)} extra revenue "
                f"(95% CI {_money(revenue['low'], currency)} to {_money(revenue['high'], currency)}).")
    if orders["low"] <= 0 <= orders["high"]:
        sentence += " The interval includes zero: not yet distinguishable from no effect."
    return sentence
