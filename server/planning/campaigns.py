"""Campaign planning: a campaign's outbox rows, planned in batches by the dispatcher's sweep.

A campaign asked to send gets ``plan_after`` (when planning may start: at once, or its UTC
send time). Each dispatcher pass (``sweep``) plans the next batch of its audience (segment
rows in subscription-id order after ``plan_cursor``, up to ``audience_max_id``), one row per
subscription with ``dedupe_key = campaign:{id}:{subscription}`` and ``group_key =
campaign:{id}``: a batch planned twice (two workers, a retried pass) is stored once, and a
50,000-subscriber campaign is many small transactions, never one in a web request.

When each row is due:

- ``now`` / ``at``: from the start time (the request, or ``send_at``);
- ``local``: at ``local_time`` (``HH:MM``) in the subscriber's zone (subscription's, visitor's,
  else the shop's), the first such moment at or after the start;
- with ``rate_per_minute`` set, rows sharing a start time are spaced ``60 / rate`` seconds apart
  (``slots`` remembers the next free time per start time across batches), so the dispatcher's
  claims of due rows follow the rate. A batch planned after its start time is spread from
  the moment it is planned, never into the past.

The send-time policy then treats ``campaign`` like any marketing push: the frequency cap and
quiet hours apply (a push held by quiet hours goes at their end).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import JSONB

from server.core.config import default
from server.core.db import UTCDateTime
from server.core.errors import Invalid
from server.core.kinds import REGISTRY
from server.core.models import (CAMPAIGN_KIND, OPEN_PUSH_STATUSES, Campaign, CampaignStatus, CouponSource, Push,
                                PushStatus, Shop, Subscription, Visitor)
from server.outbox import plan as outbox
from server.planning import content, coupons, rendering, segments, templates

log = logging.getLogger(__name__)

KIND = CAMPAIGN_KIND
CAMPAIGN = REGISTRY["campaign"]
# Rows per campaign per dispatcher pass (``CAMPAIGN_PLAN_BATCH``): each pass's fixed work (its
# sweeps, the audience page's start, a commit) is shared by this many rows, and its transaction
# stays well under a second.
PLAN_BATCH: int = default("CAMPAIGN_PLAN_BATCH")
INSERT_CHUNK = 400  # rows per INSERT statement on SQLite (its bound-parameter limit)
FIELDS = ("title", "body", "url", "icon", "image")


def group_key(campaign_id: int) -> str:
    """The plan name every row of a campaign carries (what its stats and cancel select by)."""
    return f"{KIND}:{campaign_id}"


def dedupe_key(campaign_id: int, subscription_id: int) -> str:
    """One row per campaign and subscription, however often the plan is made."""
    return f"{KIND}:{campaign_id}:{subscription_id}"


def context(shop: Shop, first_name: str | None, coupon: str = "") -> dict[str, Any]:
    """The variables a campaign template may use: ``shop_name``, ``shop_url``, ``first_name``,
    ``currency``, ``coupon`` (the push's code, ``""`` for none)."""
    return {"shop_name": shop.name, "shop_url": rendering.shop_url(shop), "first_name": first_name or "",
            "currency": shop.currency, "coupon": coupon}


def _render_field(campaign: Any, field: str, variables: dict[str, Any]) -> str:
    try:
        return templates.render(getattr(campaign, field) or "", variables)
    except templates.RENDER_ERRORS as exc:
        # Checked when saved; one failing on odd live data falls back below (texts not logged).
        log.warning("campaign %s template %s failed at plan time: %s", getattr(campaign, "id", None), field,
                    type(exc).__name__)
        return ""


def render(campaign: Any, shop: Shop, first_name: str | None, coupon: str = "") -> outbox.Rendered:
    """The campaign's notification for one subscriber (with ``coupon`` as ``{{ coupon }}``); links
    that are not http(s) fall back (``url`` to the shop's home page) or are dropped (``icon``, ``image``)."""
    variables = context(shop, first_name, coupon)
    title = _render_field(campaign, "title", variables) or shop.name
    return outbox.Rendered(
        title=rendering._clip(title, rendering.MAX_TITLE),
        body=rendering._clip(_render_field(campaign, "body", variables), rendering.MAX_BODY),
        url=rendering.safe_url(_render_field(campaign, "url", variables)) or rendering.shop_url(shop),
        icon=rendering.safe_url(_render_field(campaign, "icon", variables)),
        image=rendering.safe_url(_render_field(campaign, "image", variables)),
    )


def coupon_source(session: orm.Session, campaign: Any) -> CouponSource | None:
    """The shop's campaign coupon source when one of ``campaign``'s templates uses ``{{ coupon }}``
    (``PUT /v1/admin/coupons/campaign``), else None."""
    if not content.uses_coupon(campaign):
        return None
    return coupons.get_source(session, campaign.shop_id, KIND)


def parse_hhmm(value: str) -> time:
    """``"09:30"`` as a time (the caller validated the shape)."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def zone_of(name: str | None) -> tzinfo:
    """A zone by name; UTC for a missing or unknown one."""
    try:
        return ZoneInfo(name) if name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def next_local(at: time, zone: tzinfo, not_before: datetime) -> datetime:
    """The first moment at or after ``not_before`` when clocks in ``zone`` show ``at`` (UTC)."""
    day = not_before.astimezone(zone).date()
    for offset in range(3):  # today, tomorrow; a third day only around a DST jump
        candidate = datetime.combine(day + timedelta(days=offset), at, tzinfo=zone).astimezone(timezone.utc)
        if candidate >= not_before:
            return candidate
    return not_before


@dataclass
class Spreader:
    """Hands out due times at most ``rate`` per minute per start time, across batches."""

    rate: int | None
    slots: dict[str, str]

    def due(self, start: datetime, now: datetime) -> datetime:
        """The next due time for a row whose campaign (or zone) starts at ``start``."""
        if not self.rate:
            return start
        key = start.isoformat()
        free = datetime.fromisoformat(self.slots[key]) if key in self.slots else start
        due = max(free, now)
        self.slots[key] = (due + timedelta(seconds=60 / self.rate)).isoformat()
        return due


def start_time(campaign: Campaign, zone_name: str | None) -> datetime:
    """When rows of ``campaign`` for a subscriber in ``zone_name`` start being due."""
    assert campaign.plan_after is not None
    if campaign.send_mode == "local" and campaign.local_time:
        return next_local(parse_hhmm(campaign.local_time), zone_of(zone_name), campaign.plan_after)
    return campaign.plan_after


def _batch_size(config: Mapping[str, Any] | None) -> int:
    return max(1, int((config or {}).get("CAMPAIGN_PLAN_BATCH", PLAN_BATCH)))


def plan_batch(session: orm.Session, campaign: Campaign, now: datetime, limit: int = PLAN_BATCH) -> int:
    """Plan the next ``limit`` rows of ``campaign`` (locked by the caller); return how many were new."""
    shop = session.get(Shop, campaign.shop_id)
    assert shop is not None and campaign.plan_after is not None
    conditions = segments.parse_segment(campaign.segment or [])
    ref = campaign.plan_after
    if campaign.audience_max_id is None:
        # The audience is who is subscribed when planning starts (a later subscriber is not added).
        campaign.audience_max_id = int(session.scalar(
            sa.select(sa.func.coalesce(sa.func.max(Subscription.id), 0)).where(Subscription.shop_id == shop.id)))
        campaign.targeted = segments.count(session, shop, conditions, ref, campaign.audience_max_id)
    spreader = Spreader(campaign.rate_per_minute, dict(campaign.slots or {}))
    source = coupon_source(session, campaign)
    fixed = coupons.sample_code(source) if source is not None and source.mode == "fixed" else ""
    codes = _ListCodes(session, shop.id, campaign.id, now) if source is not None and source.mode == "list" else None
    local = campaign.send_mode == "local" and bool(campaign.local_time)
    # One statement on PostgreSQL, unless rows differ by zone (local time) or each takes its own
    # list code (attached to its stored push): those are planned row by row here.
    if session.get_bind().dialect.name == "postgresql" and not local and codes is None:
        seen, last_id, stored = _plan_in_sql(session, campaign, shop, conditions, spreader, now, limit, fixed)
    else:
        seen, last_id, stored = _plan_in_python(session, campaign, shop, conditions, spreader, now, limit, fixed,
                                                codes)
    campaign.slots = spreader.slots
    campaign.planned = (campaign.planned or 0) + stored
    if last_id is not None:
        campaign.plan_cursor = last_id
    if seen < limit:
        campaign.planned_at = now
    if campaign.status == CampaignStatus.SCHEDULED.value:
        campaign.status = CampaignStatus.SENDING.value
    campaign.updated_at = now
    log.info("campaign %s: planned %d row(s) up to subscription %s%s", campaign.id, stored, campaign.plan_cursor,
             " (done)" if campaign.planned_at else "")
    return stored


def _plan_in_python(session: orm.Session, campaign: Campaign, shop: Shop, conditions: list[Any],
                    spreader: Spreader, now: datetime, limit: int, fixed: str = "",
                    codes: _ListCodes | None = None) -> tuple[int, int | None, int]:
    """The next page of the audience read into Python, each row's due time and texts made here
    (a ``local`` campaign's start differs by zone; a list code is taken per row), then stored in
    bulk (row by row with list codes); returns (rows read, last subscription id read, rows stored)."""
    assert campaign.plan_after is not None
    rows = segments.page(session, shop, conditions, campaign.plan_after, after_id=campaign.plan_cursor,
                         max_id=campaign.audience_max_id, limit=limit)
    rendered_for: dict[str, outbox.Rendered] = {}  # without a list code, texts depend on the first name only
    starts: dict[str | None, datetime] = {}
    planned, taken = [], []
    row_context = {"campaign_id": campaign.id}  # one dict for the batch: stored as one value
    for row in rows:
        coupon = coupons.NO_COUPON
        if codes is not None:
            if outbox.exists(session, shop.id, dedupe_key(campaign.id, row.id)):
                continue  # planned before (a retried batch): taking a code for it would only give it back
            coupon = codes.take(row.id)
        if coupon.code:
            rendered = render(campaign, shop, row.first_name, coupon.code)
        else:
            rendered = rendered_for.get(row.first_name or "")
            if rendered is None:
                rendered = rendered_for[row.first_name or ""] = render(campaign, shop, row.first_name, fixed)
        start = starts.get(row.zone)
        if start is None:
            start = starts[row.zone] = start_time(campaign, row.zone)
        planned.append(outbox.PlannedPush(
            shop_id=shop.id, kind=KIND, subscription_id=row.id, visitor_id=row.visitor_id,
            dedupe_key=dedupe_key(campaign.id, row.id), group_key=group_key(campaign.id),
            due_at=spreader.due(start, now), rendered=rendered, ttl=CAMPAIGN.ttl, urgency=CAMPAIGN.urgency,
            context=row_context))
        taken.append(coupon)
    if codes is None:
        # PostgreSQL takes the batch in one statement (its columns as arrays); SQLite in chunks.
        chunk = len(planned) or 1 if session.get_bind().dialect.name == "postgresql" else INSERT_CHUNK
        stored = sum(outbox.plan_many(session, planned[i:i + chunk], now) for i in range(0, len(planned), chunk))
    else:
        # Row by row: each list code is attached to its stored push, or given back when the row
        # was stored meanwhile by another planner (its dedupe key decides).
        stored = 0
        for push, coupon in zip(planned, taken):
            push_id = outbox.plan_id(session, push, now)
            coupons.attach(session, coupon, push_id)
            stored += push_id is not None
    return len(rows), rows[-1].id if rows else None, stored


def _plan_in_sql(session: orm.Session, campaign: Campaign, shop: Shop, conditions: list[Any],
                 spreader: Spreader, now: datetime, limit: int, fixed: str = "") -> tuple[int, int | None, int]:
    """The next page of the audience planned by the database in one ``INSERT ... SELECT``
    (every row starts at the same time: ``now`` or ``at``); returns (rows read, last subscription
    id read, rows stored).

    The same rows as ``_plan_in_python``: the page's bounds are read first; the texts are rendered
    here once per first name (once in all when no template reads it); with a rate, the n-th row
    of the page is due ``n`` steps after the first (what ``Spreader`` hands out row by row).
    """
    assert campaign.plan_after is not None
    ref = campaign.plan_after
    page = (segments.audience(shop, conditions, ref, Subscription.id)
            .where(Subscription.id > campaign.plan_cursor, Subscription.id <= campaign.audience_max_id)
            .order_by(Subscription.id).limit(limit).subquery())
    seen, last_id = session.execute(sa.select(sa.func.count(), sa.func.max(page.c.id))).one()
    if not seen:
        return 0, None, 0
    rows = (segments.audience(shop, conditions, ref, Subscription.id, Subscription.visitor_id,
                              sa.func.coalesce(Visitor.first_name, "").label("first_name"))
            .where(Subscription.id > campaign.plan_cursor, Subscription.id <= last_id).subquery())
    start = start_time(campaign, None)
    first_due = spreader.due(start, now)
    due: Any = sa.literal(first_due, UTCDateTime())
    if campaign.rate_per_minute:
        step = timedelta(seconds=60 / campaign.rate_per_minute)
        spreader.slots[start.isoformat()] = (first_due + step * seen).isoformat()
        steps = sa.func.row_number().over(order_by=rows.c.id) - 1
        due = due + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.literal(step.total_seconds(), sa.Float()) * steps,
                                          type_=sa.Interval())
    texts: dict[str, outbox.Rendered]
    if any(templates.uses(getattr(campaign, f) or "", "first_name") for f in FIELDS):
        names = session.scalars(sa.select(rows.c.first_name).distinct()).all()
        texts = {name: render(campaign, shop, name or None, fixed) for name in names}
    else:
        texts = {"": render(campaign, shop, None, fixed)}
    source: Any = rows
    text_columns: dict[str, Any]
    if len(texts) == 1:
        (rendered,) = texts.values()
        text_columns = {f: sa.cast(sa.literal(getattr(rendered, f)), sa.Text) for f in FIELDS}
    else:
        table = sa.values(sa.column("name", sa.Text), *(sa.column(f, sa.Text) for f in FIELDS), name="texts").data(
            [(name, *(getattr(r, f) for f in FIELDS)) for name, r in texts.items()])
        source = rows.join(table, table.c.name == rows.c.first_name)
        text_columns = {f: table.c[f] for f in FIELDS}
    columns = {
        "shop_id": sa.literal(shop.id), "kind": sa.literal(KIND),
        "dedupe_key": sa.literal(f"{KIND}:{campaign.id}:") + sa.cast(rows.c.id, sa.String),
        "group_key": sa.literal(group_key(campaign.id)), "step": sa.literal(0),
        "visitor_id": rows.c.visitor_id, "subscription_id": rows.c.id,
        "status": sa.literal(PushStatus.PENDING.value), "due_at": due, "attempts": sa.literal(0),
        **text_columns, "ttl": sa.literal(CAMPAIGN.ttl), "urgency": sa.literal(CAMPAIGN.urgency),
        "context": sa.cast(sa.literal(json.dumps({"campaign_id": campaign.id})), JSONB),
        "created_at": sa.literal(now, UTCDateTime()),
    }
    stored = outbox.plan_from_select(session, list(columns), sa.select(*columns.values()).select_from(source))
    return int(seen), int(last_id), stored


@dataclass
class _ListCodes:
    """Single-use codes for one batch of a campaign, taken one per push (``coupons.take_code``);
    once the list is used up the rest of the batch goes without, logged once."""

    session: orm.Session
    shop_id: int
    campaign_id: int
    now: datetime
    used_up: bool = False

    def take(self, subscription_id: int) -> coupons.Coupon:
        """A fresh code assigned to ``subscription_id``, or ``NO_COUPON`` when none is left."""
        if self.used_up:
            return coupons.NO_COUPON
        coupon = coupons.take_code(self.session, self.shop_id, KIND, subscription_id, self.now)
        if coupon is None:
            self.used_up = True
            log.warning("coupon list used up (shop %s, kind %s): campaign %s pushes from subscription %s on "
                        "go without a code", self.shop_id, KIND, self.campaign_id, subscription_id)
            return coupons.NO_COUPON
        return coupon


def _locked(session: orm.Session, query: sa.Select[Any]) -> sa.Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        # Two workers never plan the same batch (the slots would be counted twice).
        return query.with_for_update(skip_locked=True)
    return query


def sweep(session: orm.Session, now: datetime, config: Mapping[str, Any] | None = None) -> int:
    """Plan one batch of every campaign due for planning, and mark finished ones sent; return rows planned."""
    limit = _batch_size(config)
    due = session.scalars(_locked(session, sa.select(Campaign).where(
        Campaign.status.in_((CampaignStatus.SCHEDULED.value, CampaignStatus.SENDING.value)),
        Campaign.plan_after <= now, Campaign.planned_at.is_(None)).order_by(Campaign.plan_after, Campaign.id)
    )).all()
    planned = 0
    for campaign in due:
        try:
            with session.begin_nested():  # one campaign's failure leaves the others' batches alone
                planned += plan_batch(session, campaign, now, limit)
        except Invalid as exc:
            # Its segment was valid when saved and is not now (a country no zone maps to any more):
            # stop it plainly rather than fail every pass.
            log.error("campaign %s stopped: its segment is no longer valid: %s", campaign.id, exc.message)
            campaign.status, campaign.cancelled_at, campaign.updated_at = CampaignStatus.CANCELLED.value, now, now
            outbox.cancel_group(session, campaign.shop_id, group_key(campaign.id), reason="campaign_invalid")
        except Exception:
            log.exception("campaign %s: planning a batch failed; retried on the next pass", campaign.id)
    finish_sent(session, now)
    return planned


def finish_sent(session: orm.Session, now: datetime) -> int:
    """Campaigns wholly planned with no open row left become ``sent``; return how many."""
    open_rows = (sa.select(sa.literal(1)).select_from(Push)
                 .where(Push.shop_id == Campaign.shop_id,
                        Push.group_key == sa.literal(KIND + ":") + sa.cast(Campaign.id, sa.String),
                        Push.status.in_(OPEN_PUSH_STATUSES)))
    # Rows another worker holds are skipped (it finishes them): no pass waits on another's lock.
    done = list(session.scalars(_locked(session, sa.select(Campaign.id).where(
        Campaign.status == CampaignStatus.SENDING.value, Campaign.planned_at.is_not(None), ~open_rows.exists()))))
    if not done:
        return 0
    session.execute(sa.update(Campaign).where(Campaign.id.in_(done))
                    .values(status=CampaignStatus.SENT.value, updated_at=now)
                    .execution_options(synchronize_session="fetch"))
    return len(done)
