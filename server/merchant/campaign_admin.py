"""Campaigns for the merchant: create, edit, preview, send, cancel, delete and their stats.

Plain functions taking a session and ``now``; the merchant API and the dashboard call them.
Sending only records *when* (``plan_after``) and *how*: the dispatcher's sweep plans the rows
in batches (``server.planning.campaigns``), so a large audience is never one web request.

Status moves ``draft`` → ``scheduled`` (send at a time, or local time) / ``sending`` (now) →
``sending`` (planning started) → ``sent`` (every row planned and none open); ``scheduled`` or
``sending`` → ``cancelled`` (pending rows cancelled; rows already sent stay sent).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import orm

from server.core.errors import ApiError, Invalid, NotFound
from server.core.models import Campaign, CampaignStatus, Click, Order, Push, PushStatus, Shop
from server.merchant.presets import check_template
from server.reports.stats import money, ratio
from server.outbox import plan as outbox
from server.planning import campaigns as planner
from server.planning import coupons, segments, templates

URL_FIELDS = ("url", "icon", "image")
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
MAX_RATE = 100_000
MAX_AHEAD = timedelta(days=365)
SEND_MODES = ("now", "at", "local")
PER_PAGE = 50
PREVIEW_SAMPLE = 20  # subscribers of the audience a preview renders for
TEXT_FIELDS = ("title", "body")  # where an empty variable shows; links fall back on their own


class Conflict(ApiError):
    status, code = 409, "conflict"


class CampaignIn(BaseModel):
    """A campaign's editable fields (POST: ``name`` and ``title`` required; PUT: any subset)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    title: str | None = Field(default=None, min_length=1, max_length=templates.MAX_TEMPLATE_CHARS)
    body: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    url: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    icon: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    image: str | None = Field(default=None, max_length=templates.MAX_TEMPLATE_CHARS)
    segment: list[Any] | None = None
    send_mode: Literal["now", "at", "local"] | None = None
    send_at: AwareDatetime | None = None
    local_time: str | None = Field(default=None, pattern=HHMM)
    rate_per_minute: int | None = Field(default=None, ge=1, le=MAX_RATE)


class SendIn(BaseModel):
    """``POST /campaigns/{id}/send``: how and when (absent fields keep the campaign's)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["now", "at", "local"] | None = None
    send_at: AwareDatetime | None = None
    local_time: str | None = Field(default=None, pattern=HHMM)
    rate_per_minute: int | None = Field(default=None, ge=1, le=MAX_RATE)


def get_campaign(session: orm.Session, shop: Shop, campaign_id: int) -> Campaign:
    """The shop's campaign ``campaign_id``; raises NotFound (also for another shop's)."""
    campaign = session.scalars(sa.select(Campaign).where(Campaign.id == campaign_id,
                                                         Campaign.shop_id == shop.id)).one_or_none()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def _lock(session: orm.Session, campaign: Campaign) -> Campaign:
    """Re-read ``campaign`` locked (PostgreSQL), so a cancel and a sweep's batch do not interleave."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
        session.refresh(campaign)
    return campaign


def _apply(campaign: Campaign, update: CampaignIn) -> None:
    fields = update.model_dump(exclude_unset=True)
    for field in ("title", "body", *URL_FIELDS):
        if field in fields:
            value = fields[field] or ""
            if field == "title" and not value.strip():
                raise Invalid("title: must not be empty", code="invalid_field")
            setattr(campaign, field, check_template(field, value))
    if "name" in fields:
        if not fields["name"] or not fields["name"].strip():
            raise Invalid("name: must not be empty", code="invalid_field")
        campaign.name = fields["name"].strip()
    if "segment" in fields:
        campaign.segment = segments.as_json(segments.parse_segment(fields["segment"] or []))
    for field in ("send_mode", "send_at", "local_time", "rate_per_minute"):
        if field in fields:
            setattr(campaign, field, fields[field])
    if "send_mode" in fields and fields["send_mode"] is None:
        campaign.send_mode = "now"


def create_campaign(session: orm.Session, shop: Shop, data: CampaignIn, now: datetime) -> Campaign:
    """A new draft; raises Invalid (422) for a missing name or title, a bad template or segment."""
    if not data.name or not data.title:
        raise Invalid(f"{'name' if not data.name else 'title'}: required", code="invalid_field")
    campaign = Campaign(shop_id=shop.id, name="", title="", body="", url="", icon="", image="", segment=[],
                        send_mode="now", status=CampaignStatus.DRAFT.value, plan_cursor=0, planned=0,
                        created_at=now, updated_at=now)
    _apply(campaign, data)
    session.add(campaign)
    session.flush()
    return campaign


def update_campaign(session: orm.Session, shop: Shop, campaign_id: int, data: CampaignIn,
                    now: datetime) -> Campaign:
    """Change a draft (partial); raises Conflict once it is scheduled or sent."""
    campaign = get_campaign(session, shop, campaign_id)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: only a draft can be edited")
    _apply(campaign, data)
    campaign.updated_at = now
    return campaign


def delete_campaign(session: orm.Session, shop: Shop, campaign_id: int) -> None:
    """Delete a draft, sent or cancelled campaign (its push records stay); raises Conflict while it runs."""
    campaign = get_campaign(session, shop, campaign_id)
    if campaign.status in (CampaignStatus.SCHEDULED.value, CampaignStatus.SENDING.value):
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: cancel it first")
    session.delete(campaign)


def send_campaign(session: orm.Session, shop: Shop, campaign_id: int, data: SendIn, now: datetime) -> Campaign:
    """Ask for a draft to be sent now, at ``send_at`` (UTC), or at ``local_time`` in each
    subscriber's zone (from ``send_at`` on, else from now). Raises Conflict (not a draft) or
    Invalid (a time missing, in the past, or over a year ahead)."""
    campaign = _lock(session, get_campaign(session, shop, campaign_id))
    if campaign.status != CampaignStatus.DRAFT.value:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: only a draft can be sent")
    fields = data.model_dump(exclude_unset=True)
    mode = fields.get("mode") or campaign.send_mode or "now"
    send_at = fields["send_at"] if "send_at" in fields else campaign.send_at
    local_time = fields["local_time"] if "local_time" in fields else campaign.local_time
    if "rate_per_minute" in fields:
        campaign.rate_per_minute = fields["rate_per_minute"]
    if mode == "at":
        if send_at is None:
            raise Invalid("send_at: required to send at a time (ISO 8601 with Z or an offset)", code="invalid_field")
        if send_at < now - timedelta(minutes=1):
            raise Invalid("send_at: must not be in the past", code="invalid_field")
    if mode == "local" and not local_time:
        raise Invalid("local_time: required to send at a local time (HH:MM)", code="invalid_field")
    if send_at is not None and send_at > now + MAX_AHEAD:
        raise Invalid("send_at: at most a year ahead", code="invalid_field")
    segments.parse_segment(campaign.segment or [])  # stored ones are valid; checked again all the same
    campaign.send_mode = mode
    campaign.send_at = send_at if mode != "now" else None
    campaign.local_time = local_time if mode == "local" else None
    campaign.requested_at = now
    campaign.plan_after = max(send_at, now) if (mode != "now" and send_at is not None) else now
    campaign.status = CampaignStatus.SENDING.value if mode == "now" else CampaignStatus.SCHEDULED.value
    campaign.updated_at = now
    return campaign


def cancel_campaign(session: orm.Session, shop: Shop, campaign_id: int, now: datetime) -> tuple[Campaign, int]:
    """Stop a scheduled or sending campaign: no more planning, pending rows cancelled; return it and how
    many rows were cancelled. Raises Conflict for a draft, sent or cancelled one."""
    campaign = _lock(session, get_campaign(session, shop, campaign_id))
    if campaign.status not in (CampaignStatus.SCHEDULED.value, CampaignStatus.SENDING.value):
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: only a scheduled or sending one can be cancelled")
    campaign.status = CampaignStatus.CANCELLED.value
    campaign.cancelled_at = now
    campaign.updated_at = now
    cancelled = outbox.cancel_group(session, shop.id, planner.group_key(campaign.id), reason="campaign_cancelled")
    return campaign, cancelled


def preview(session: orm.Session, shop: Shop, campaign_id: int, data: CampaignIn | None, now: datetime
            ) -> dict[str, Any]:
    """How many subscriptions the campaign reaches now, and its notification rendered for a
    sample of them (the first ``PREVIEW_SAMPLE``; sample data when none), with a warning for
    each variable printed without a fallback that is empty for some of the sample; ``data``
    previews unsaved edits (nothing is stored).

    ``sample`` is the first subscriber's rendering; ``samples`` each distinct rendering with
    how many of the sample see it, most seen first.
    """
    campaign = get_campaign(session, shop, campaign_id)
    # A detached copy: the edits previewed are never stored.
    draft = SimpleNamespace(**{f: getattr(campaign, f) for f in ("id", "shop_id", "name", "title", "body", "url",
                                                                "icon", "image", "segment", "send_mode", "send_at",
                                                                "local_time", "rate_per_minute")})
    if data is not None:
        _apply(draft, data)  # type: ignore[arg-type]
    conditions = segments.parse_segment(draft.segment or [])
    ref = campaign.plan_after if campaign.plan_after and campaign.status != CampaignStatus.DRAFT.value else now
    rows = segments.page(session, shop, conditions, ref, after_id=0, max_id=None, limit=PREVIEW_SAMPLE)
    names = [row.first_name for row in rows] or [templates.SAMPLE_CONTEXT["first_name"]]
    # The code each push will carry: the fixed one, or a sample for a list (the preview takes none).
    coupon = coupons.sample_code(planner.coupon_source(session, draft))
    rendered_for: dict[str, dict[str, Any]] = {}
    counts: dict[tuple[Any, ...], int] = {}
    for name in names:
        rendered = rendered_for.get(name or "")
        if rendered is None:
            rendered = rendered_for[name or ""] = _rendered_json(planner.render(draft, shop, name, coupon))
        key = tuple(rendered.items())
        counts[key] = counts.get(key, 0) + 1
    return {"audience": segments.count(session, shop, conditions, ref),
            "sample": rendered_for[names[0] or ""],
            "sample_is_subscriber": bool(rows),
            "sampled": len(rows),
            "samples": [{**dict(key), "count": n} for key, n in sorted(counts.items(), key=lambda item: -item[1])],
            "warnings": _empty_variable_warnings(draft, [planner.context(shop, row.first_name, coupon) for row in rows])}


def _rendered_json(rendered: outbox.Rendered) -> dict[str, Any]:
    return {"title": rendered.title, "body": rendered.body, "url": rendered.url, "icon": rendered.icon,
            "image": rendered.image}


def _empty_variable_warnings(draft: Any, contexts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per text field and variable it prints without a fallback: how many sampled subscribers
    would see it empty (none: no warning)."""
    warnings = []
    for field in TEXT_FIELDS:
        for variable in sorted(templates.unguarded_variables(getattr(draft, field) or "")):
            empty = sum(1 for variables in contexts if templates.is_blank(variables.get(variable)))
            if empty:
                warnings.append({"field": field, "variable": variable, "empty": empty, "sampled": len(contexts),
                                 "message": f"{variable} is empty for {empty} of {len(contexts)} sampled "
                                            "subscribers: set a fallback"})
    return warnings


def campaign_stats(session: orm.Session, shop: Shop, campaign_id: int) -> dict[str, Any]:
    """A campaign's figures: rows by status, clicks, CTR, and the paid orders whose latest click (in
    the attribution window) was on one of its pushes, with their GMV."""
    campaign = get_campaign(session, shop, campaign_id)
    return _stats(session, shop, [campaign])[campaign.id]


RUNNING = (CampaignStatus.SCHEDULED.value, CampaignStatus.SENDING.value)


def campaign_progress(session: orm.Session, shop: Shop, campaign_id: int) -> dict[str, Any]:
    """Where a campaign's send is, for the dashboard's live bar: its stats, ``status``,
    ``running``, ``percent`` (rows final of the audience, rounded down) and ``seconds_left``
    at the campaign's pace (None without a pace or once it stopped). Raises NotFound."""
    campaign = get_campaign(session, shop, campaign_id)
    stats = _stats(session, shop, [campaign])[campaign.id]
    total = stats["targeted"] if stats["targeted"] is not None else stats["planned"]
    finished = stats["sent"] + stats["failed"] + stats["skipped"]
    running = campaign.status in RUNNING
    left = max(total - finished, 0) if running else 0
    seconds_left = -(-left * 60 // campaign.rate_per_minute) if running and campaign.rate_per_minute else None
    return {**stats, "status": campaign.status, "running": running,
            "percent": min(100 * finished // total, 100) if total else (100 if not running else 0),
            "to_go": left, "seconds_left": seconds_left, "rate_per_minute": campaign.rate_per_minute,
            "plan_after": campaign.plan_after.isoformat() if campaign.plan_after else None}


def _stats(session: orm.Session, shop: Shop, campaigns: list[Campaign]) -> dict[int, dict[str, Any]]:
    """Stats of several campaigns at once, one grouped query per figure."""
    keys = {planner.group_key(c.id): c.id for c in campaigns}
    if not keys:
        return {}
    in_group = sa.and_(Push.shop_id == shop.id, Push.group_key.in_(keys))
    by_status: dict[str, dict[str, int]] = {k: {} for k in keys}
    unique: dict[str, int] = {}
    for key, status, n, clicked in session.execute(
            sa.select(Push.group_key, Push.status, sa.func.count(), sa.func.count(Push.clicked_at))
            .where(in_group).group_by(Push.group_key, Push.status)):
        by_status[key][status] = n
        unique[key] = unique.get(key, 0) + clicked
    clicks = dict(session.execute(
        sa.select(Push.group_key, sa.func.count(Click.id)).join(Click, Click.push_id == Push.id)
        .where(in_group, Click.shop_id == shop.id).group_by(Push.group_key)).all())
    orders = {key: (n, total) for key, n, total in session.execute(
        sa.select(Push.group_key, sa.func.count(Order.id), sa.func.sum(Order.total))
        .join(Order, Order.attributed_push_id == Push.id)
        .where(in_group, Order.shop_id == shop.id, Order.status == "paid").group_by(Push.group_key))}
    result = {}
    for key, campaign_id in keys.items():
        rows = by_status[key]
        sent = rows.get(PushStatus.SENT.value, 0)
        n_orders, gmv = orders.get(key, (0, None))
        result[campaign_id] = {
            "targeted": next(c.targeted for c in campaigns if c.id == campaign_id),
            "planned": sum(rows.values()),
            "pending": rows.get(PushStatus.PENDING.value, 0) + rows.get(PushStatus.SENDING.value, 0),
            "sent": sent,
            "failed": rows.get(PushStatus.FAILED.value, 0) + rows.get(PushStatus.EXPIRED.value, 0),
            "skipped": rows.get(PushStatus.SKIPPED.value, 0) + rows.get(PushStatus.MISSED.value, 0),
            "cancelled": rows.get(PushStatus.CANCELLED.value, 0),
            "clicks": int(clicks.get(key, 0)),
            "unique_clicks": unique.get(key, 0),
            "ctr": ratio(unique.get(key, 0), sent),
            "orders": int(n_orders),
            "gmv": money(gmv if gmv is not None else Decimal(0)),
            "currency": shop.currency,
        }
    return result


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def campaign_as_json(campaign: Campaign, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """A campaign in the API's shape (with its stats when given)."""
    done = campaign.planned_at is not None
    data = {
        "id": campaign.id, "name": campaign.name, "status": campaign.status,
        "title": campaign.title, "body": campaign.body, "url": campaign.url, "icon": campaign.icon,
        "image": campaign.image, "segment": list(campaign.segment or []), "send_mode": campaign.send_mode,
        "send_at": _iso(campaign.send_at), "local_time": campaign.local_time,
        "rate_per_minute": campaign.rate_per_minute,
        "created_at": _iso(campaign.created_at), "updated_at": _iso(campaign.updated_at),
        "requested_at": _iso(campaign.requested_at), "plan_after": _iso(campaign.plan_after),
        "cancelled_at": _iso(campaign.cancelled_at),
        "progress": {"targeted": campaign.targeted, "planned": campaign.planned or 0, "planning_done": done},
    }
    if stats is not None:
        data["stats"] = stats
    return data


def list_campaigns(session: orm.Session, shop: Shop, page: int = 1) -> dict[str, Any]:
    """The shop's campaigns, newest first, each with its stats."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Campaign).where(Campaign.shop_id == shop.id)) or 0
    campaigns = list(session.scalars(
        sa.select(Campaign).where(Campaign.shop_id == shop.id).order_by(Campaign.id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    stats = _stats(session, shop, campaigns)
    pages = max(1, -(-total // PER_PAGE))
    return {"items": [campaign_as_json(c, stats.get(c.id)) for c in campaigns], "page": page,
            "per_page": PER_PAGE, "total": total, "pages": pages, "has_more": page < pages}


def campaign_choices(session: orm.Session, shop: Shop) -> list[tuple[int, str]]:
    """The shop's campaigns that have rows (sending or sent), newest first, as ``(id, name)``:
    what the push records can be filtered by."""
    return [(cid, name) for cid, name in session.execute(
        sa.select(Campaign.id, Campaign.name)
        .where(Campaign.shop_id == shop.id, Campaign.status != CampaignStatus.DRAFT.value)
        .order_by(Campaign.id.desc()).limit(500))]
