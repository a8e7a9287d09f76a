"""What on-site messages did: per message and in total for the Overview.

Per message: impressions (showings), closes, clicks (the call to action or the opt-in button),
replies per tag, coupon codes given, and the orders attributed to it with their revenue.

An order is attributed to an on-site message when the same visitor was shown that message within
the shop's attribution window (``attribution_hours``, the window push clicks use) before paying;
when several were shown, the latest showing wins. Push attribution (``orders.attributed_*``) is
not changed: an order may count for a push click and for the message the visitor saw.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import OnsiteImpression, OnsiteMessage, Order, Shop

ZERO = Decimal("0.00")


def _empty() -> dict[str, Any]:
    return {"impressions": 0, "closes": 0, "clicks": 0, "replies": 0, "replies_by_tag": {}, "codes": 0,
            "orders": 0, "revenue": ZERO}


def _attributed(session: orm.Session, shop: Shop, since: datetime | None,
                until: datetime | None) -> dict[int, tuple[int, Decimal]]:
    """``{message_id: (orders, revenue)}``: each paid order of a visitor shown a message credited to
    the latest showing within the attribution window before payment."""
    window = timedelta(hours=shop.attribution_hours)
    shown_visitors = sa.select(OnsiteImpression.visitor_id).where(OnsiteImpression.shop_id == shop.id)
    query = sa.select(Order.visitor_id, Order.paid_at, Order.total).where(
        Order.shop_id == shop.id, Order.status == "paid", Order.visitor_id.in_(shown_visitors))
    if since is not None:
        query = query.where(Order.paid_at >= since)
    if until is not None:
        query = query.where(Order.paid_at < until)
    orders = session.execute(query).all()
    if not orders:
        return {}
    showings: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for visitor_id, shown_at, message_id in session.execute(
            sa.select(OnsiteImpression.visitor_id, OnsiteImpression.shown_at, OnsiteImpression.message_id)
            .where(OnsiteImpression.shop_id == shop.id,
                   OnsiteImpression.visitor_id.in_({o.visitor_id for o in orders}))):
        showings[visitor_id].append((shown_at, message_id))
    result: dict[int, tuple[int, Decimal]] = {}
    for order in orders:
        within = [s for s in showings[order.visitor_id] if order.paid_at - window <= s[0] <= order.paid_at]
        if within:
            message_id = max(within)[1]
            count, revenue = result.get(message_id, (0, ZERO))
            result[message_id] = (count + 1, revenue + order.total)
    return result


def message_reports(session: orm.Session, shop: Shop, since: datetime | None = None,
                    until: datetime | None = None) -> dict[int, dict[str, Any]]:
    """``{message_id: report}`` for every message of ``shop``: all time, or the showings and
    orders in ``[since, until)`` when given."""
    reports = {mid: _empty() for mid in session.scalars(
        sa.select(OnsiteMessage.id).where(OnsiteMessage.shop_id == shop.id))}
    filters = [OnsiteImpression.shop_id == shop.id]
    if since is not None:
        filters.append(OnsiteImpression.shown_at >= since)
    if until is not None:
        filters.append(OnsiteImpression.shown_at < until)
    rows = session.execute(
        sa.select(OnsiteImpression.message_id, sa.func.count(), sa.func.count(OnsiteImpression.closed_at),
                  sa.func.count(OnsiteImpression.clicked_at), sa.func.count(OnsiteImpression.reply_tag),
                  sa.func.count(OnsiteImpression.code))
        .where(*filters).group_by(OnsiteImpression.message_id))
    for message_id, shown, closes, clicks, replies, codes in rows:
        report = reports.setdefault(message_id, _empty())
        report.update(impressions=shown, closes=closes, clicks=clicks, replies=replies, codes=codes)
    for message_id, tag, count in session.execute(
            sa.select(OnsiteImpression.message_id, OnsiteImpression.reply_tag, sa.func.count())
            .where(*filters, OnsiteImpression.reply_tag.is_not(None))
            .group_by(OnsiteImpression.message_id, OnsiteImpression.reply_tag)):
        reports.setdefault(message_id, _empty())["replies_by_tag"][tag] = count
    for message_id, (orders, revenue) in _attributed(session, shop, since, until).items():
        reports.setdefault(message_id, _empty()).update(orders=orders, revenue=revenue)
    return reports


def totals(session: orm.Session, shop: Shop, since: datetime | None = None,
           until: datetime | None = None) -> dict[str, Any]:
    """The sums over all of the shop's messages (the Overview's on-site figures)."""
    total = _empty()
    for report in message_reports(session, shop, since, until).values():
        for key in ("impressions", "closes", "clicks", "replies", "codes", "orders", "revenue"):
            total[key] += report[key]
        for tag, count in report["replies_by_tag"].items():
            total["replies_by_tag"][tag] = total["replies_by_tag"].get(tag, 0) + count
    return total


def as_json(report: dict[str, Any]) -> dict[str, Any]:
    """A report with money as a two-decimal string."""
    return {**report, "revenue": f"{report['revenue']:.2f}"}
