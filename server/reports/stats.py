"""The merchant's figures over a date range, from the daily rollups (SQLite and PostgreSQL).

The figures are sums of ``stat_days`` and ``visitor_days`` rows (``server.core.rollups``, kept by
triggers as pushes, clicks, orders, subscriptions and events are written), so a range costs its
days, not the rows behind them. Days are UTC calendar days; ``from`` and ``to`` are both
included. Money is returned as a string with two decimals (``"123.40"``), summed exactly as whole
cents and never passed through a float; GMV is in the shop's one currency.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.errors import Invalid
from server.core.kinds import TEST_KIND
from server.core import rollups
from server.core.models import ALL_KINDS, FunnelDay, StatDay

MAX_DAYS = 366
# The days a range may name. The calendar's own ends overflow the range arithmetic (the day after
# ``to``, 29 days before it, an attribution window of up to 90 days past the end), and no push
# predates 1970: both ends leave a wide margin rather than one exact to that arithmetic.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days ``first`` to ``last`` (both included), as the half-open ``[start, end)``."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=timezone.utc)

    def days(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def _parse_day(raw: str) -> date:
    if not _DAY.fullmatch(raw):
        raise ValueError(raw)
    day = date.fromisoformat(raw)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(raw)
    return day


def parse_range(raw_from: str | None, raw_to: str | None, now: datetime) -> DateRange:
    """Read ``from``/``to`` (YYYY-MM-DD, FIRST_DAY to LAST_DAY); default the last 30 days to
    today (never before FIRST_DAY). Raises Invalid (``invalid_field``) for anything else."""
    try:
        last = _parse_day(raw_to) if raw_to else now.astimezone(timezone.utc).date()
        first = _parse_day(raw_from) if raw_from else max(last - timedelta(days=29), FIRST_DAY)
    except ValueError:
        raise Invalid(f"from and to must be dates as YYYY-MM-DD between {FIRST_DAY.isoformat()} "
                      f"and {LAST_DAY.isoformat()}", code="invalid_field") from None
    if first > last:
        raise Invalid("from must not be after to", code="invalid_field")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"a range is at most {MAX_DAYS} days", code="invalid_field")
    return DateRange(first, last)


def money(value: Any) -> str:
    """An exact amount as a two-decimal string (``None`` is zero)."""
    return str(Decimal(value if value is not None else 0).quantize(CENT))


def ratio(part: int, whole: int) -> float:
    """``part / whole`` rounded to 4 places, 0 when ``whole`` is 0, never above 1."""
    return round(min(part / whole, 1.0), 4) if whole else 0.0


def _day_key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


_COUNTERS = (StatDay.sent, StatDay.unique_clicks, StatDay.failed, StatDay.clicks, StatDay.clicks_a1,
             StatDay.clicks_a2, StatDay.orders, StatDay.gmv_cents, StatDay.new_subs)


def _rollup_sums(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, Any]:
    """The range's ``stat_days`` summed per kind: ``{kind: row}``."""
    return {row.kind: row for row in session.execute(
        sa.select(StatDay.kind, *(sa.func.sum(c).label(c.key) for c in _COUNTERS))
        .where(StatDay.shop_id == shop_id, StatDay.day >= rng.first, StatDay.day <= rng.last,
               StatDay.kind != TEST_KIND)  # the dashboard's test pushes and their clicks count nowhere
        .group_by(StatDay.kind)
    ).all()}


def _cents(value: Any) -> Decimal:
    return Decimal(int(value or 0)) / 100


def compute_stats(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, Any]:
    """Every figure of ``GET /v1/admin/stats`` for one shop over ``rng`` (see the module doc),
    from the daily rollups (``server.core.rollups``): the range's days, not its rows."""
    sums = _rollup_sums(session, shop_id, rng)
    # Active at the end of the range: opened on or before its last day, less those closed by then.
    subscribers = session.scalar(
        sa.select(sa.func.sum(StatDay.subs_opened - StatDay.subs_closed))
        .where(StatDay.shop_id == shop_id, StatDay.kind == "", StatDay.day <= rng.last))

    def total(name: str, kinds: Any = None) -> int:
        return sum(int(getattr(row, name) or 0) for kind, row in sums.items() if kinds is None or kind in kinds)

    attributed = [kind for kind in sums if kind != ""]
    pushes_sent = total("sent")
    unique_clicks = total("unique_clicks")
    by_kind = {}
    for kind in ALL_KINDS:
        row = sums.get(kind)
        sent, clicked = (int(row.sent), int(row.unique_clicks)) if row is not None else (0, 0)
        entry = {"sent": sent, "clicks": int(row.clicks) if row is not None else 0,
                 "unique_clicks": clicked, "ctr": ratio(clicked, sent),
                 "orders": int(row.orders) if row is not None else 0,
                 "gmv": money(_cents(row.gmv_cents if row is not None else 0))}
        if row is not None and (row.clicks_a1 or row.clicks_a2):
            entry["actions"] = {"a1": int(row.clicks_a1), "a2": int(row.clicks_a2)}
        by_kind[kind] = entry
    return {
        "from": rng.first.isoformat(),
        "to": rng.last.isoformat(),
        "currency": None,  # filled in by the caller, which knows the shop
        "subscribers": int(subscribers or 0),
        "new_subscribers": total("new_subs"),
        "pushes_sent": pushes_sent,
        "pushes_failed": total("failed"),
        "clicks": total("clicks"),
        "unique_clicks": unique_clicks,
        "ctr": ratio(unique_clicks, pushes_sent),
        "orders": total("orders", attributed),
        "gmv": money(_cents(total("gmv_cents", attributed))),
        "all_orders": total("orders"),
        "all_gmv": money(_cents(total("gmv_cents"))),
        "by_kind": by_kind,
        "funnel": funnel(session, shop_id, rng),
        "daily": daily(session, shop_id, rng),
    }


def funnel(session: orm.Session, shop_id: int, rng: DateRange) -> dict[str, int]:
    """Visitors in the range, and how far each got: subscriber, shopper, buyer, repeat buyer.

    Each step counts the visitors who reached it *or a later one*, so the funnel is nested
    (visitors ⊇ subscribers ⊇ shoppers ⊇ buyers ⊇ repeat buyers) without dropping anyone: a
    visitor who paid (the orders webhook) is a buyer and a shopper even when the widget never
    saw a cart, and counts as a visitor of the range. A visitor of the range was first seen,
    sent an event, subscribed, started a checkout or paid an order in it; a subscriber has a
    subscription by the end of the range; a shopper carted or started a checkout in the range; a
    buyer paid an order in the range; a repeat buyer paid two or more.

    Read from ``funnel_days`` (``server.core.rollups``): each visitor counts once, at its first
    day of a stage inside the range (the day whose gap back to its previous one of that stage
    reaches before the range), so the cost is the range's days, not its visitors.
    """
    if session.get_bind().dialect.name == "postgresql":
        since_first = FunnelDay.day - rng.first
        to_last = rng.last - FunnelDay.day
    else:
        since_first = sa.func.julianday(FunnelDay.day) - sa.func.julianday(rng.first.isoformat())
        to_last = sa.func.julianday(rng.last.isoformat()) - sa.func.julianday(FunnelDay.day)
    reached = dict.fromkeys(rollups.STAGES, 0)
    repeat = 0
    for stage, count, again in session.execute(
        sa.select(FunnelDay.stage, sa.func.sum(FunnelDay.n),
                  sa.func.sum(FunnelDay.n).filter(FunnelDay.next_gap >= 0, FunnelDay.next_gap <= to_last))
        .where(FunnelDay.shop_id == shop_id, FunnelDay.day >= rng.first, FunnelDay.day <= rng.last,
               FunnelDay.prev_gap > since_first)
        .group_by(FunnelDay.stage)
    ):
        reached[stage] = int(count or 0)
        if stage == "p":
            repeat = int(again or 0)
    return {"visitors": reached["a"], "subscribers": reached["u"], "shoppers": reached["s"],
            "buyers": reached["p"], "repeat_buyers": repeat}


def daily(session: orm.Session, shop_id: int, rng: DateRange) -> list[dict[str, Any]]:
    """One entry per day of the range: pushes sent, clicks, attributed orders and GMV."""
    attributed = StatDay.kind != ""
    rows = {_day_key(row.day): row for row in session.execute(
        sa.select(StatDay.day, sa.func.sum(StatDay.sent).label("sent"), sa.func.sum(StatDay.clicks).label("clicks"),
                  sa.func.sum(StatDay.orders).filter(attributed).label("orders"),
                  sa.func.sum(StatDay.gmv_cents).filter(attributed).label("gmv"))
        .where(StatDay.shop_id == shop_id, StatDay.day >= rng.first, StatDay.day <= rng.last,
               StatDay.kind != TEST_KIND)
        .group_by(StatDay.day)
    ).all()}
    series = []
    for day in rng.days():
        key = day.isoformat()
        row = rows.get(key)
        series.append({"date": key, "sent": int(row.sent or 0) if row else 0,
                       "clicks": int(row.clicks or 0) if row else 0,
                       "orders": int(row.orders or 0) if row else 0,
                       "gmv": money(_cents(row.gmv if row else 0))})
    return series
