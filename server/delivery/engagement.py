"""Engagement: whether a subscription clicks what it gets (the guardrail against revoked permission).

Browsers quietly revoke (or hide) the notification permission of sites that send much and get
few clicks. A subscription is *unengaged* when it received at least ``n`` pushes and clicked
none of its last ``n``: every sent push counts (transactional ones too, since a click on a
shipping update is engagement), except the merchant's test pushes. The send-time policy skips
marketing pushes to unengaged subscriptions when the shop sets ``pause_unengaged_after``; the
stats report the share of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import in_ids
from server.core.kinds import TEST_KIND
from server.core.models import Push, PushStatus, Subscription, SubscriptionStatus

# The dashboard's test pushes (kind ``test``) say nothing of the visitor's interest.
_NOT_A_TEST = Push.kind != TEST_KIND
DEFAULT_LAST_N = 10  # what the stats look at when the shop has no pause set


def _ranked(*conditions: Any) -> Any:
    """Sent pushes numbered per subscription, newest first (1 = the latest)."""
    return (
        sa.select(Push.subscription_id.label("sid"), Push.clicked_at.label("clicked_at"),
                  sa.func.row_number().over(partition_by=Push.subscription_id,
                                            order_by=(Push.sent_at.desc(), Push.id.desc())).label("rn"))
        .where(Push.status == PushStatus.SENT.value, Push.subscription_id.is_not(None), _NOT_A_TEST, *conditions)
        .subquery("ranked")
    )


def unengaged_subscriptions(session: orm.Session, last_n: Mapping[int, int]) -> set[int]:
    """Of the subscriptions in ``last_n`` (id -> n, 0 = not checked), those that received at least
    n pushes and clicked none of their last n. One query for all of them."""
    wanted = {sid: n for sid, n in last_n.items() if n > 0}
    if not wanted:
        return set()
    ranked = _ranked(in_ids(Push.subscription_id, set(wanted), session))
    rows = session.execute(
        sa.select(ranked.c.sid, ranked.c.rn, ranked.c.clicked_at.is_not(None))
        .where(ranked.c.rn <= max(wanted.values()))
    )
    received: dict[int, int] = {}
    clicked: set[int] = set()
    for sid, rn, was_clicked in rows:
        if rn <= wanted[sid]:
            received[sid] = received.get(sid, 0) + 1
            if was_clicked:
                clicked.add(sid)
    return {sid for sid, count in received.items() if count >= wanted[sid] and sid not in clicked}


def unengaged_count(session: orm.Session, shop_id: int, n: int) -> tuple[int, int]:
    """(active subscriptions of the shop, those of them unengaged over their last ``n`` pushes)."""
    ranked = _ranked(Push.shop_id == shop_id)
    last = (sa.select(ranked.c.sid, sa.func.count().label("received"),
                      sa.func.count(ranked.c.clicked_at).label("clicked"))
            .where(ranked.c.rn <= n).group_by(ranked.c.sid).subquery("last"))
    active, unengaged = session.execute(
        sa.select(sa.func.count(),
                  sa.func.count().filter(last.c.received >= n, last.c.clicked == 0))
        .select_from(Subscription)
        .outerjoin(last, last.c.sid == Subscription.id)
        .where(Subscription.shop_id == shop_id, Subscription.status == SubscriptionStatus.ACTIVE.value)
    ).one()
    return int(active or 0), int(unengaged or 0)


