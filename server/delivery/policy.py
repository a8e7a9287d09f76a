"""Send-time policy: what the dispatcher asks about each claimed push before sending it.

``gate`` answers one of:
- ``Decision("send")``: go ahead;
- ``Decision("skip", reason=...)``: do not send; the row becomes ``skipped`` with the reason;
- ``Decision("defer", until=...)``: not yet (quiet hours, series spacing); the row goes back
  to ``pending`` with ``due_at = until``.

The checks, in order: the subscription must be active and the kind enabled; transactional
pushes (``shipped``) go out at once; a marketing push to a subscription that ignored its last
``shop.pause_unengaged_after`` pushes is skipped (``unengaged``, when the shop sets it); a marketing push waits for the end of the shop's quiet
hours (in the visitor's time zone) and keeps a series' spacing; only then is the frequency cap
counted, so a deferred push is judged when it really goes out.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.db import in_ids
from server.core.kinds import TEST_KIND
from server.delivery.engagement import unengaged_subscriptions
from server.outbox.claim import subscription_facts
from server.core.models import TRANSACTIONAL_KINDS, PresetSetting, Push, PushStatus, Shop, SubscriptionStatus

log = logging.getLogger(__name__)

CAP_WINDOW = timedelta(hours=24)
BROWSE_KIND = "browse_abandonment"
SERIES_KIND = "checkout_recovery"


@dataclass(frozen=True)
class Decision:
    action: str  # "send" | "skip" | "defer"
    reason: str | None = None
    until: datetime | None = None


SEND = Decision("send")
_ACTIVE = SubscriptionStatus.ACTIVE.value
_TEST = SubscriptionStatus.TEST.value

# Test pushes (the dashboard's "send a test to my devices") are of kind ``test``: their kind is
# their one mark, which the stats' rollups and the engagement streak read too.
NOT_A_TEST = Push.kind != TEST_KIND


def is_test_push(push: Any) -> bool:
    """Whether the merchant asked for this push from the dashboard."""
    return push.kind == TEST_KIND


def gate(session: orm.Session, push: Any, now: datetime) -> Decision:
    """Decide whether ``push`` may go out at ``now``."""
    return gate_many(session, [push], now)[0]


def gate_many(session: orm.Session, pushes: Sequence[Any], now: datetime,
              subscriptions: Mapping[int, Any] | None = None) -> list[Decision]:
    """Decide a claimed batch in order, with a few queries per batch rather than per row.

    ``pushes`` are ``Push`` objects or rows with the same attributes (the dispatcher's claim
    returns plain rows). ``subscriptions`` (id -> ``status``, ``timezone``,
    ``visitor_timezone``) may come from the caller, who read them with the batch; otherwise
    they are read here. Rows of the batch count against each other's frequency cap (and the
    browse once-a-day rule) only when they are decided ``send``: a row deferred or skipped
    ahead of another in the same batch uses up nothing. Rows claimed by other batches still
    in flight count.
    """
    if not pushes:
        return []
    batch_ids = {p.id for p in pushes}
    if subscriptions is None:
        subscriptions = subscription_facts(session, {p.subscription_id for p in pushes if p.subscription_id is not None})
    enabled = _enabled_kinds(session, pushes)
    marketing_subs = {p.subscription_id for p in pushes
                      if p.kind not in TRANSACTIONAL_KINDS and p.subscription_id is not None
                      and not is_test_push(p)}
    sent_counts = _marketing_sent_counts(session, marketing_subs, now)
    in_flight = _marketing_in_flight(session, marketing_subs, batch_ids)
    browse_sent = _browse_sent(session, {p.subscription_id for p in pushes if p.kind == BROWSE_KIND}, now)
    previous_steps = _previous_steps(session, [p for p in pushes if p.subscription_id in marketing_subs])
    # Held for the whole batch: the session's identity map keeps only referenced rows, and
    # ``_decide`` asks for each row's shop.
    shops = {shop_id: session.get(Shop, shop_id) for shop_id in {p.shop_id for p in pushes}}
    unengaged = _unengaged(shops, session, [p for p in pushes if p.subscription_id in marketing_subs])
    decided_sends: dict[int, int] = {}
    decisions = []
    for push in pushes:
        decision = _decide(session, push, now, subscriptions, enabled, sent_counts, in_flight, browse_sent,
                           previous_steps, decided_sends, unengaged)
        if (decision.action == "send" and push.kind not in TRANSACTIONAL_KINDS and push.subscription_id
                and not is_test_push(push)):
            decided_sends[push.subscription_id] = decided_sends.get(push.subscription_id, 0) + 1
            if push.kind == BROWSE_KIND:
                browse_sent.add(push.subscription_id)
        decisions.append(decision)
    return decisions


def _decide(session: orm.Session, push: Any, now: datetime, subscriptions: Mapping[int, Any],
            enabled: dict[tuple[int, str], bool], sent_counts: dict[int, int], in_flight: dict[int, list[int]],
            browse_sent: set[int], previous_steps: dict[tuple[Any, ...], Any], decided_sends: dict[int, int],
            unengaged: set[int]) -> Decision:
    subscription = subscriptions.get(push.subscription_id) if push.subscription_id else None
    # A test device's subscription (status ``test``) takes test pushes and nothing else.
    if subscription is None or subscription.status not in ((_ACTIVE, _TEST) if is_test_push(push) else (_ACTIVE,)) \
            or subscription.ended_at is not None:  # a test device its push service forgot keeps its status
        return Decision("skip", reason="subscription_inactive")
    if is_test_push(push):
        return SEND  # the merchant asked for it just now: no cap, no quiet hours, even if switched off
    if enabled.get((push.shop_id, push.kind)) is False:
        return Decision("skip", reason="kind_disabled")
    if push.kind in TRANSACTIONAL_KINDS:
        return SEND
    shop = session.get(Shop, push.shop_id)
    if shop is None:
        return Decision("skip", reason="shop_gone")
    if push.subscription_id in unengaged:
        return Decision("skip", reason="unengaged")
    quiet_end = quiet_hours_end(shop, _time_zone(shop, subscription), now)
    if quiet_end is not None:
        return Decision("defer", reason="quiet_hours", until=quiet_end)
    spaced = _series_not_before(push, now, previous_steps)
    if spaced is not None and spaced > now:
        return Decision("defer", reason="series_spacing", until=spaced)
    sub_id = subscription.id
    if push.kind == BROWSE_KIND and sub_id in browse_sent:
        return Decision("skip", reason="browse_once_per_24h")
    ahead = sum(1 for other in in_flight.get(sub_id, ()) if other < push.id)
    if sent_counts.get(sub_id, 0) + ahead + decided_sends.get(sub_id, 0) >= shop.frequency_cap_per_24h:
        return Decision("skip", reason="frequency_cap")
    return SEND


def _unengaged(shops: Mapping[int, Shop | None], session: orm.Session, pushes: Sequence[Any]) -> set[int]:
    """Subscriptions of these marketing rows that ignored their shop's ``pause_unengaged_after``
    last pushes (one query for the batch, none when no shop of the batch sets it)."""
    thresholds = {}
    for push in pushes:
        shop = shops.get(push.shop_id)
        if shop is not None and shop.pause_unengaged_after:
            thresholds[push.subscription_id] = shop.pause_unengaged_after
    return unengaged_subscriptions(session, thresholds) if thresholds else set()


def _enabled_kinds(session: orm.Session, pushes: Sequence[Push]) -> dict[tuple[int, str], bool]:
    rows = session.execute(
        sa.select(PresetSetting.shop_id, PresetSetting.kind, PresetSetting.enabled)
        .where(PresetSetting.shop_id.in_({p.shop_id for p in pushes}))
    )
    return {(shop_id, kind): is_on for shop_id, kind, is_on in rows}


def _marketing_sent_counts(session: orm.Session, subscription_ids: set[int], now: datetime) -> dict[int, int]:
    """Marketing pushes sent to each subscription in the last 24 h."""
    if not subscription_ids:
        return {}
    rows = session.execute(
        sa.select(Push.subscription_id, sa.func.count(Push.id))
        .where(in_ids(Push.subscription_id, subscription_ids, session), Push.kind.not_in(TRANSACTIONAL_KINDS),
               Push.status == PushStatus.SENT.value, Push.sent_at > now - CAP_WINDOW, NOT_A_TEST)
        .group_by(Push.subscription_id)
    )
    return {sub_id: int(count) for sub_id, count in rows}


def _marketing_in_flight(session: orm.Session, subscription_ids: set[int],
                         batch_ids: set[int]) -> dict[int, list[int]]:
    """Ids of marketing rows claimed by other batches (``sending``), per subscription."""
    if not subscription_ids:
        return {}
    rows = session.execute(
        sa.select(Push.subscription_id, Push.id)
        .where(in_ids(Push.subscription_id, subscription_ids, session), Push.kind.not_in(TRANSACTIONAL_KINDS),
               Push.status == PushStatus.SENDING.value, sa.not_(in_ids(Push.id, batch_ids, session)), NOT_A_TEST)
    )
    found: dict[int, list[int]] = {}
    for sub_id, push_id in rows:
        found.setdefault(sub_id, []).append(push_id)
    return found


def _browse_sent(session: orm.Session, subscription_ids: set[int | None], now: datetime) -> set[int]:
    """Subscriptions that got a browse reminder in the last 24 h."""
    ids = {i for i in subscription_ids if i is not None}
    if not ids:
        return set()
    return set(session.scalars(
        sa.select(Push.subscription_id).distinct()
        .where(in_ids(Push.subscription_id, ids, session), Push.kind == BROWSE_KIND,
               Push.status == PushStatus.SENT.value, Push.sent_at > now - CAP_WINDOW, NOT_A_TEST)
    ))


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _time_zone(shop: Shop, subscription: Any) -> tzinfo:
    """The visitor's zone from the widget (subscription, then visitor), else the shop's, else UTC."""
    for name in (subscription.timezone, subscription.visitor_timezone, shop.timezone):
        zone = _zone(name)
        if zone is not None:
            return zone
    return timezone.utc


def _parse(hhmm: str) -> time:
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


def quiet_hours_end(shop: Shop, zone: tzinfo, now: datetime) -> datetime | None:
    """When the quiet hours containing ``now`` end (UTC), or None when ``now`` is outside them."""
    if not shop.quiet_hours_start or not shop.quiet_hours_end:
        return None
    start, end = _parse(shop.quiet_hours_start), _parse(shop.quiet_hours_end)
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    wraps = start > end  # e.g. 22:00-08:00 spans midnight
    inside = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not inside:
        return None
    end_day = local.date()
    if wraps and clock >= start:
        end_day += timedelta(days=1)
    ends = datetime.combine(end_day, end, tzinfo=zone)
    return ends.astimezone(timezone.utc)


def _series_gap(push: Any) -> timedelta | None:
    """The spacing a series step keeps from the previous one, or None when it keeps none."""
    if push.kind != SERIES_KIND or push.step <= 1:
        return None
    context = push.context or {}
    offset, previous_offset = context.get("offset"), context.get("previous_offset")
    if not isinstance(offset, int) or not isinstance(previous_offset, int):
        return None
    return timedelta(seconds=max(0, offset - previous_offset))


def _step_key(shop_id: int, group_key: str | None, subscription_id: int | None, step: int) -> tuple[Any, ...]:
    return shop_id, group_key, subscription_id, step


def _previous_steps(session: orm.Session, pushes: Sequence[Any]) -> dict[tuple[Any, ...], Any]:
    """The previous step of every series row in ``pushes``, in one query (the lowest id when several)."""
    wanted = {_step_key(p.shop_id, p.group_key, p.subscription_id, p.step - 1)
              for p in pushes if _series_gap(p) is not None}
    if not wanted:
        return {}
    group_keys = {key[1] for key in wanted}
    by_group = [Push.group_key.in_(group_keys - {None})]
    if None in group_keys:
        by_group.append(Push.group_key.is_(None))
    rows = session.execute(
        sa.select(Push.id, Push.shop_id, Push.group_key, Push.subscription_id, Push.step, Push.status,
                  Push.sent_at, Push.due_at)
        .where(Push.shop_id.in_({key[0] for key in wanted}), sa.or_(*by_group),
               Push.subscription_id.in_({key[2] for key in wanted}))
        .order_by(Push.id)
    )
    found: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        key = _step_key(row.shop_id, row.group_key, row.subscription_id, row.step)
        if key in wanted:
            found.setdefault(key, row)
    return found


def _series_not_before(push: Any, now: datetime, previous_steps: dict[tuple[Any, ...], Any]) -> datetime | None:
    """The earliest time a series step may go: the previous step's send time plus their gap."""
    gap = _series_gap(push)
    if gap is None:
        return None
    previous = previous_steps.get(_step_key(push.shop_id, push.group_key, push.subscription_id, push.step - 1))
    if previous is None:
        return None
    if previous.status == PushStatus.SENT.value and previous.sent_at is not None:
        return previous.sent_at + gap
    if previous.status in (PushStatus.PENDING.value, PushStatus.SENDING.value):
        # Not out yet (quiet hours, retries): this step follows it, never overtakes it.
        return max(previous.due_at, now) + gap
    return None  # skipped, failed or cancelled: nothing to keep apart from
