"""Engagement: whether a subscription clicks what it gets (the guardrail against revoked permission).

Browsers quietly revoke (or hide) the notification permission of sites that send much and get
few clicks. A subscription is *unengaged* when it received at least ``n`` pushes and clicked
none of its last ``n``: every sent push counts (transactional ones too, since a click on a
shipping update is engagement), except the merchant's test pushes. The send-time policy skips
marketing pushes to unengaged subscriptions when the shop sets ``pause_unengaged_after``; the
stats report the share of them.

Both read ``subscriptions.unclicked_streak`` (the sent pushes after the latest clicked one, kept
by triggers: ``server.core.streaks``): unengaged over ``n`` is a streak of at least ``n``. No
read ranks the shop's pushes.
"""
from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import in_ids
from server.core.models import Subscription, SubscriptionStatus

DEFAULT_LAST_N = 10  # what the stats look at when the shop has no pause set


def unengaged_subscriptions(session: orm.Session, last_n: Mapping[int, int]) -> set[int]:
    """Of the subscriptions in ``last_n`` (id -> n, 0 = not checked), those that received at least
    n pushes and clicked none of their last n. One query for all of them."""
    wanted = {sid: n for sid, n in last_n.items() if n > 0}
    if not wanted:
        return set()
    rows = session.execute(
        sa.select(Subscription.id, Subscription.unclicked_streak)
        .where(in_ids(Subscription.id, set(wanted), session), Subscription.unclicked_streak >= min(wanted.values()))
    )
    return {sid for sid, streak in rows if streak >= wanted[sid]}


def unengaged_count(session: orm.Session, shop_id: int, n: int) -> tuple[int, int]:
    """(active subscriptions of the shop, those of them unengaged over their last ``n`` pushes)."""
    # No subscription's last 0 pushes make it unengaged (a streak of 0 is no streak).
    ignored = Subscription.unclicked_streak >= n if n > 0 else sa.false()
    active, unengaged = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(ignored))
        .where(Subscription.shop_id == shop_id, Subscription.status == SubscriptionStatus.ACTIVE.value)
    ).one()
    return int(active or 0), int(unengaged or 0)
