"""Engagement guardrails on the Overview: how much the shop sends, and who stopped clicking.

Browsers revoke (or quietly hide) the notification permission of sites that send much and get
few clicks. The stats carry a ``guardrails`` block, with plain-words warnings when:

- a kind's click rate over the stats range is under ``LOW_CTR`` (1 %) after at least
  ``MIN_SENDS`` (200) sends;
- more than half of the active subscriptions clicked none of their last N pushes (N is the
  shop's ``pause_unengaged_after``, else ``engagement.DEFAULT_LAST_N`` = 10);
- a push service is in a storm of 404/410 answers (``server.delivery.storm``) and holds some of
  the shop's subscribers as suspect: said so, in words that tell it is not the shop's fault.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.kinds import KIND_LABELS, TEST_KIND
from server.core.models import Push, PushStatus, Shop, StatDay
from server.delivery.engagement import DEFAULT_LAST_N, unengaged_count
from server.delivery.storm import host_states

LOW_CTR = 0.01
MIN_SENDS = 200
WINDOW_DAYS = 7
# Whose push service a host is, for the storm warning (by the end of its name).
PUSH_SERVICES = (("googleapis.com", "Google's push service (Chrome, Edge on Android)"),
                 ("mozilla.com", "Mozilla's push service (Firefox)"),
                 ("push.apple.com", "Apple's push service (Safari)"),
                 ("notify.windows.com", "Microsoft's push service (Edge on Windows)"))


def guardrails(session: orm.Session, shop: Shop, by_kind: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The ``guardrails`` block of the stats: sends per subscriber over the last 7 days (by kind),
    the unengaged share, and the warnings (``by_kind`` is the stats' own, over their range)."""
    sent = sent_by_kind(session, shop.id, now - timedelta(days=WINDOW_DAYS))
    last_n = shop.pause_unengaged_after or DEFAULT_LAST_N
    active, unengaged = unengaged_count(session, shop.id, last_n)
    total = sum(sent.values())
    warnings = []
    for kind, row in by_kind.items():
        if row["sent"] >= MIN_SENDS and row["ctr"] < LOW_CTR:
            warnings.append({
                "code": "low_ctr", "kind": kind,
                "message": f"{KIND_LABELS[kind]}: only {row['ctr'] * 100:.1f} % of its {row['sent']} pushes were clicked. "
                           "Browsers may stop showing your notifications when people ignore them: "
                           "send this one less often, or make it more useful.",
            })
    if active and unengaged * 2 > active:
        warnings.append({
            "code": "unengaged",
            "message": f"{unengaged} of your {active} subscribers clicked none of their last {last_n} pushes. "
                       "Browsers may take notification permission away from sites people ignore: send less, "
                       "or pause marketing pushes to unengaged subscribers in Settings.",
        })
    warnings.extend(storm_warnings(session, shop.id, now))
    return {
        "window_days": WINDOW_DAYS,
        "pushes_sent": total,
        "sent_per_subscriber": round(total / active, 2) if active else 0.0,
        "sent_per_subscriber_by_kind": {kind: round(n / active, 2) if active else 0.0 for kind, n in sorted(sent.items())},
        "active_subscriptions": active,
        "last_n": last_n,
        "unengaged_subscriptions": unengaged,
        "unengaged_share": round(unengaged / active, 4) if active else 0.0,
        "pause_unengaged_after": shop.pause_unengaged_after,
        "warnings": warnings,
    }


def sent_by_kind(session: orm.Session, shop_id: int, since: datetime) -> dict[str, int]:
    """The shop's pushes sent after ``since`` (test pushes aside), by kind (kinds with none left
    out): the whole UTC days after ``since``'s from ``stat_days`` (a few rows a kind), the rest of
    ``since``'s own day from the pushes, through ``ix_pushes_shop_sent`` (its sent rows only)."""
    first_day = since.astimezone(timezone.utc).date()
    next_midnight = datetime.combine(first_day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    whole_days = session.execute(
        sa.select(StatDay.kind, sa.func.sum(StatDay.sent))
        .where(StatDay.shop_id == shop_id, StatDay.day > first_day, StatDay.kind != TEST_KIND)
        .group_by(StatDay.kind))
    # The status as a literal: the partial index's condition, which a bound parameter would not
    # match (SQLite, and PostgreSQL's generic plans).
    first_hours = session.execute(
        sa.select(Push.kind, sa.func.count())
        .where(Push.shop_id == shop_id, Push.status == sa.literal_column(f"'{PushStatus.SENT.value}'"),
               Push.sent_at > since, Push.sent_at < next_midnight, Push.kind != TEST_KIND)
        .group_by(Push.kind))
    sent: dict[str, int] = {}
    for kind, n in [*whole_days, *first_hours]:
        sent[kind] = sent.get(kind, 0) + int(n or 0)
    return {kind: n for kind, n in sent.items() if n}


def _service_name(host: str) -> str:
    name = host.partition("://")[2] or host
    for suffix, label in PUSH_SERVICES:
        if name == suffix or name.endswith("." + suffix):
            return f"{label}, {name},"
    return f"The push service {name}"


def storm_warnings(session: orm.Session, shop_id: int, now: datetime) -> list[dict[str, Any]]:
    """One warning per push service in a storm that holds some of this shop's subscribers."""
    warnings = []
    for state in host_states(session, now, shop_id=shop_id):
        if state.storm_since is None or not state.suspects:
            continue
        warnings.append({
            "code": "push_storm", "host": state.host, "suspect_subscriptions": state.suspects,
            "message": f"{_service_name(state.host)} has been answering \"subscription gone\" to most pushes "
                       f"since {state.storm_since:%Y-%m-%d %H:%M} UTC. That is the push service's fault, not your "
                       f"subscribers': Pushcart keeps the {state.suspects} subscribers it concerns instead of "
                       "removing them, retries their pushes, and restores them when the service answers "
                       "normally again.",
        })
    return warnings
