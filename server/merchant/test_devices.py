"""Test devices: browsers the merchant subscribes from the dashboard, and the test pushes sent to them.

The dashboard's "Subscribe this browser as a test device" registers the browser's service
worker and push subscription with the shop's VAPID key and posts it here with a name. The
subscription is stored with status ``test`` under a visitor of its own (key
``TEST_DEVICE_PREFIX`` + random, which no widget id can be), so no audience, count or stat sees
it: they all ask for ``active`` subscriptions, and the visitor records leave such visitors out.

``send_to_test_devices(session, shop, content, now)`` plans the content, already rendered, as
one push of kind ``test`` per device, due now (the rows of one send share a group key): the
dispatcher sends it like any push (the policy lets a test push through at once), and the stats
never count it. The Events page, a campaign and an experiment's variant render their content
with sample data (``preset_content``, ``campaign_content``, ``variant_content``); an on-site
message sends a preview (``onsite_content``): its title and text, whose click opens the shop's
page with a signed preview token the widget shows the message at once for
(``server.collect.onsite``).
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import orm

from server.collect import onsite as onsite_collect
from server.collect.subscriptions import PushSubscriptionIn, check_keys, endpoint_hash
from server.core.errors import Invalid, NotFound
from server.core.kinds import TEST_KIND
from server.core.models import (KINDS, TEST_DEVICE_PREFIX, Campaign, Experiment, OnsiteMessage, Push, Shop,
                                Subscription, SubscriptionStatus, TestDevice, Visitor)
from server.core.vapid_keys import current_key, key_by_public
from server.delivery.endpoints import check_endpoint
from server.outbox import plan as outbox
from server.planning import campaigns as campaign_planner
from server.planning import coupons, defaults, recipients, rendering, templates

log = logging.getLogger(__name__)

MAX_DEVICES = 20  # per shop: a team's phones and laptops, not an audience


class TestDeviceIn(BaseModel):
    """What the dashboard posts: the name the merchant gave this browser and its subscription."""

    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    subscription: PushSubscriptionIn
    # The VAPID public key the browser subscribed with (the shop's, as the page offered it).
    application_server_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{80,100}$")] | None = None


def register_test_device(session: orm.Session, shop: Shop, data: TestDeviceIn, config: Any, now: datetime,
                         instance_key: str | None = None) -> TestDevice:
    """Store this browser's subscription as a test device of ``shop`` (a known device's
    subscription is renamed and refreshed). Raises Invalid for an endpoint the push-host policy
    refuses, bad keys, a VAPID key that is not the shop's, a subscription that is a shop
    visitor's, or a shop with ``MAX_DEVICES`` already."""
    endpoint = check_endpoint(data.subscription.endpoint, config)
    check_keys(data.subscription.keys.p256dh, data.subscription.keys.auth)
    vapid_key_id = None
    given = data.application_server_key
    if given is not None and given != instance_key:
        key = key_by_public(session, shop.id, given)
        if key is None:
            raise Invalid("application_server_key is not one of this shop's VAPID keys", code="unknown_vapid_key")
        vapid_key_id = key.id
    elif given is None and (key := current_key(session, shop.id)) is not None:
        vapid_key_id = key.id
    subscription = session.scalars(sa.select(Subscription).where(
        Subscription.shop_id == shop.id, Subscription.endpoint_hash == endpoint_hash(endpoint))).one_or_none()
    if subscription is not None:
        device = session.scalars(sa.select(TestDevice).where(TestDevice.shop_id == shop.id,
                                                             TestDevice.subscription_id == subscription.id)).one_or_none()
        if device is None:
            raise Invalid("this browser is subscribed to the shop as a visitor: it cannot be a test device too",
                          code="already_subscribed")
        device.name = data.name
        subscription.p256dh, subscription.auth = data.subscription.keys.p256dh, data.subscription.keys.auth
        subscription.vapid_key_id, subscription.last_seen_at = vapid_key_id, now
        subscription.status, subscription.ended_at = SubscriptionStatus.TEST.value, None
        return device
    if count_devices(session, shop) >= MAX_DEVICES:
        raise Invalid(f"a shop has at most {MAX_DEVICES} test devices: remove one first", code="too_many_devices")
    visitor = Visitor(shop_id=shop.id, visitor_key=TEST_DEVICE_PREFIX + secrets.token_hex(12), first_seen_at=now)
    session.add(visitor)
    session.flush()
    subscription = Subscription(
        shop_id=shop.id, visitor_id=visitor.id, endpoint=endpoint, endpoint_hash=endpoint_hash(endpoint),
        p256dh=data.subscription.keys.p256dh, auth=data.subscription.keys.auth, vapid_key_id=vapid_key_id,
        status=SubscriptionStatus.TEST.value, created_at=now, last_seen_at=now)
    session.add(subscription)
    session.flush()
    device = TestDevice(shop_id=shop.id, subscription_id=subscription.id, name=data.name, created_at=now)
    session.add(device)
    session.flush()
    log.info("test device %s added to shop %s (subscription %s)", device.id, shop.id, subscription.id)
    return device


def count_devices(session: orm.Session, shop: Shop) -> int:
    """How many test devices the shop has."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(TestDevice).where(TestDevice.shop_id == shop.id))
               or 0)


def list_test_devices(session: orm.Session, shop: Shop) -> list[dict[str, Any]]:
    """The shop's test devices, oldest first: id, name, added, and the last test push's outcome."""
    last = (sa.select(Push.status).where(Push.subscription_id == TestDevice.subscription_id)
            .order_by(Push.id.desc()).limit(1).correlate(TestDevice).scalar_subquery())
    rows = session.execute(sa.select(TestDevice, Subscription.ended_at, last.label("last"))
                           .join(Subscription, Subscription.id == TestDevice.subscription_id)
                           .where(TestDevice.shop_id == shop.id).order_by(TestDevice.id)).all()
    return [{"id": device.id, "name": device.name, "added": device.created_at.isoformat(),
             "reachable": ended_at is None, "last_push": last_status}
            for device, ended_at, last_status in rows]


def remove_test_device(session: orm.Session, shop: Shop, device_id: int) -> None:
    """Remove one of the shop's test devices (its own visitor goes, and with it the
    subscription); raises NotFound for a device of no such id in this shop."""
    device = session.scalars(sa.select(TestDevice).where(TestDevice.shop_id == shop.id,
                                                         TestDevice.id == device_id)).one_or_none()
    if device is None:
        raise NotFound("no such test device", code="not_found")
    subscription = session.get(Subscription, device.subscription_id)
    session.delete(device)
    if subscription is not None:
        visitor = session.get(Visitor, subscription.visitor_id)
        session.delete(subscription)
        if visitor is not None and visitor.visitor_key.startswith(TEST_DEVICE_PREFIX):
            session.delete(visitor)
    session.flush()


def send_to_test_devices(session: orm.Session, shop: Shop, content: outbox.Rendered, now: datetime) -> int:
    """Plan ``content`` as one ``test`` push, due now, to each of the shop's test devices; return
    how many. Raises Invalid (``no_test_devices``) when the shop has none its push service still
    knows (a device answered 404/410 is listed as no longer reachable until subscribed again)."""
    subscriptions = list(session.scalars(
        sa.select(Subscription).join(TestDevice, TestDevice.subscription_id == Subscription.id)
        .where(TestDevice.shop_id == shop.id, Subscription.status == SubscriptionStatus.TEST.value,
               Subscription.ended_at.is_(None))
        .order_by(Subscription.id)))
    if not subscriptions:
        raise Invalid("no test device to send to: open Settings in the browser that should get test pushes "
                      "and subscribe it as a test device", code="no_test_devices")
    # Rendered already: the plan must not render it again per device (a coupon of kind ``test``).
    fixed = dataclasses.replace(content, source=None)
    # The kind marks a test push (the policy, the stats and the guardrails read it); the
    # group key only names this send's rows.
    send = f"devices:{secrets.token_hex(8)}"
    return recipients.plan_rows(session, shop=shop, kind=TEST_KIND, subscriptions=subscriptions,
                                key=send, group_key=send, due_at=now,
                                rendered=fixed, now=now, context={"test": True})


def _sample_context(shop: Shop) -> dict[str, Any]:
    """The sample data with the shop's own name, address and currency."""
    own = rendering.base_context(shop, None)
    return {**templates.SAMPLE_CONTEXT, **{name: own[name] for name in ("shop_name", "shop_url", "currency")}}


def preset_content(session: orm.Session, shop: Shop, kind: str) -> outbox.Rendered:
    """A preset kind's saved templates rendered with sample data (in the default language); raises
    NotFound for an unknown kind."""
    if kind not in KINDS:
        raise NotFound(f"unknown kind {kind!r}", code="unknown_kind")
    # The kind's coupon as a preview shows it: its fixed code, a sample for a list (none is taken).
    context = {**_sample_context(shop), "coupon": coupons.sample_code(coupons.get_source(session, shop.id, kind))}
    return rendering.render(defaults.get_setting(session, shop, kind), context, rendering.shop_url(shop))


def campaign_content(session: orm.Session, shop: Shop, campaign_id: int) -> outbox.Rendered:
    """A campaign's saved texts rendered for a sample subscriber (with the sample coupon)."""
    campaign = session.scalars(sa.select(Campaign).where(Campaign.shop_id == shop.id,
                                                         Campaign.id == campaign_id)).one_or_none()
    if campaign is None:
        raise NotFound("no such campaign", code="not_found")
    coupon = coupons.sample_code(campaign_planner.coupon_source(session, campaign))
    return campaign_planner.render(campaign, shop, templates.SAMPLE_CONTEXT["first_name"], coupon)


def variant_content(session: orm.Session, shop: Shop, experiment_id: int, key: str) -> outbox.Rendered:
    """An experiment variant's texts over its kind's, rendered with sample data."""
    experiment = session.scalars(sa.select(Experiment).where(Experiment.shop_id == shop.id,
                                                             Experiment.id == experiment_id)).one_or_none()
    if experiment is None:
        raise NotFound("no such experiment", code="not_found")
    variant = next((v for v in experiment.variants or [] if v.get("key") == key), None)
    if variant is None:
        raise NotFound(f"no variant {key[:8]!r} in this experiment", code="not_found")
    return rendering.render_variant(preset_content(session, shop, experiment.kind), variant)


def onsite_preview_path(rule: dict[str, Any] | None) -> str:
    """The path a message's preview opens: its URL prefix for a ``prefix`` rule, else ``/``."""
    rule = rule or {}
    return (rule.get("path_prefix") or "/") if rule.get("page") == "prefix" else "/"


def onsite_content(session: orm.Session, shop: Shop, message_id: int, secret: str | bytes,
                   now: datetime) -> outbox.Rendered:
    """An on-site message's preview push: "Preview: <title>", its text, and a click that opens the
    shop's first origin at ``onsite_preview_path`` with a preview token valid
    ``onsite_collect.PREVIEW_SECONDS``. Raises NotFound for no such message of this shop, Invalid
    for a shop without an origin."""
    message = session.scalars(sa.select(OnsiteMessage).where(OnsiteMessage.shop_id == shop.id,
                                                             OnsiteMessage.id == message_id)).one_or_none()
    if message is None:
        raise NotFound("no such on-site message", code="not_found")
    origins = list(shop.origins or [])
    if not origins:
        raise Invalid("the shop has no origin yet: add its address in Settings first", code="no_origin")
    content = message.content or {}
    token = onsite_collect.preview_token(secret, shop.public_key, message.id, now)
    query = urlencode({onsite_collect.PREVIEW_PARAM: token})
    url = f"{origins[0].rstrip('/')}{onsite_preview_path(message.rule)}?{query}"
    return outbox.Rendered(title=f"Preview: {content.get('title') or message.name}"[:120],
                           body=(content.get("text") or "")[:240], url=url, image=content.get("image") or None)
