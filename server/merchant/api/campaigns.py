"""The merchant API's campaigns (``Authorization: Bearer <admin_token>``), scoped to the token's shop.

``GET/POST /v1/admin/campaigns``, ``GET/PUT/DELETE /v1/admin/campaigns/{id}``, and
``POST .../{id}/preview``, ``.../{id}/send``, ``.../{id}/cancel``, ``GET .../{id}/stats``.
Thin handlers: parse, call ``server.merchant.campaign_admin``, serialise; the request commits once.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from server.core.clock import get_clock
from server.core.db import get_session
from server.merchant import campaign_admin as service
from server.reports.records import read_page
from server.core.validation import parse, read_json

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


def _optional_body() -> service.CampaignIn | None:
    """A preview may carry unsaved edits; an empty body previews the saved campaign."""
    if not request.get_data(cache=True).strip():
        return None
    return parse(service.CampaignIn, read_json(request))


@bp.get("")
def list_campaigns() -> dict[str, Any]:
    """The shop's campaigns, newest first, with their stats."""
    return service.list_campaigns(get_session(), g.shop, read_page(request.args.get("page")))


@bp.post("")
def create_campaign() -> tuple[dict[str, Any], int]:
    """A new draft campaign (``name`` and ``title`` required)."""
    data = parse(service.CampaignIn, read_json(request))
    campaign = service.create_campaign(get_session(), g.shop, data, get_clock().now())
    return service.campaign_as_json(campaign), 201


@bp.get("/<int:campaign_id>")
def get_campaign(campaign_id: int) -> dict[str, Any]:
    """One campaign with its stats."""
    session = get_session()
    campaign = service.get_campaign(session, g.shop, campaign_id)
    return service.campaign_as_json(campaign, service.campaign_stats(session, g.shop, campaign_id))


@bp.put("/<int:campaign_id>")
def put_campaign(campaign_id: int) -> dict[str, Any]:
    """Change a draft (partial update)."""
    data = parse(service.CampaignIn, read_json(request))
    return service.campaign_as_json(service.update_campaign(get_session(), g.shop, campaign_id, data,
                                                            get_clock().now()))


@bp.delete("/<int:campaign_id>")
def delete_campaign(campaign_id: int) -> tuple[str, int]:
    """Delete a campaign that is not running (its push records stay)."""
    service.delete_campaign(get_session(), g.shop, campaign_id)
    return "", 204


@bp.post("/<int:campaign_id>/preview")
def preview_campaign(campaign_id: int) -> dict[str, Any]:
    """The audience count and the notification rendered for a sample subscriber."""
    return service.preview(get_session(), g.shop, campaign_id, _optional_body(), get_clock().now())


@bp.post("/<int:campaign_id>/send")
def send_campaign(campaign_id: int) -> tuple[dict[str, Any], int]:
    """Send a draft now, at a time, or at a local time; the dispatcher plans it in batches (202)."""
    raw = read_json(request) if request.get_data(cache=True).strip() else {}
    data = parse(service.SendIn, raw)
    campaign = service.send_campaign(get_session(), g.shop, campaign_id, data, get_clock().now())
    return service.campaign_as_json(campaign), 202


@bp.post("/<int:campaign_id>/cancel")
def cancel_campaign(campaign_id: int) -> dict[str, Any]:
    """Stop a scheduled or sending campaign; its pending pushes are cancelled."""
    campaign, cancelled = service.cancel_campaign(get_session(), g.shop, campaign_id, get_clock().now())
    return {**service.campaign_as_json(campaign), "cancelled_pushes": cancelled}


@bp.get("/<int:campaign_id>/stats")
def campaign_stats(campaign_id: int) -> dict[str, Any]:
    """The campaign's figures: targeted, planned, sent, failed, clicks, CTR, orders, GMV."""
    return service.campaign_stats(get_session(), g.shop, campaign_id)
