"""Push subscriptions: an upsert by endpoint, and unsubscribing.

Each subscription remembers the VAPID key it was made with (the widget names it; the shop's
current key when it does not), so its pushes are signed with that key after a rotation. A widget
that re-subscribes with a new key names its old endpoint (``replaces``): the new subscription
takes the old one's visitor and pending pushes, and the old one ends (``expired``).

The endpoint is a capability (whoever holds it can push to the browser): it is stored once per
shop (unique ``endpoint_hash``), never logged and never returned. Logs name subscription ids.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import exc, orm

from server.core.fields import Locale, ReportedZone
from server.delivery.endpoints import MAX_ENDPOINT_LENGTH, check_endpoint
from server.core.errors import Invalid
from server.core.models import OPEN_PUSH_STATUSES, Push, Shop, Subscription, SubscriptionStatus
from server.core.vapid_keys import current_key, key_by_public
from server.planning import hooks
from server.collect.events import VisitorKey, get_or_create_visitor

log = logging.getLogger(__name__)

B64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-+/]+={0,2}$", max_length=128)]


class KeysIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: B64
    auth: B64


class PushSubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENDPOINT_LENGTH)]
    expirationTime: float | None = Field(default=None, ge=0, le=1e15)  # ms since the epoch
    keys: KeysIn


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    visitor_id: VisitorKey
    subscription: PushSubscriptionIn
    locale: Locale | None = None
    timezone: ReportedZone = None
    # The VAPID public key the browser subscribed with (``options.applicationServerKey``).
    application_server_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{80,100}$")] | None = None
    # The endpoint this subscription replaces (a re-subscribe after a key rotation).
    replaces: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENDPOINT_LENGTH)] | None = None


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENDPOINT_LENGTH)]


@dataclass(frozen=True)
class Upserted:
    """The stored subscription and whether this call created it."""

    subscription: Subscription
    created: bool


def _b64decode(value: str) -> bytes:
    """Decode base64url (or standard base64), padded or not."""
    value = value.replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Invalid("keys must be base64url", code="invalid_keys") from None


def check_keys(p256dh: str, auth: str) -> None:
    """Raise ``Invalid`` unless ``p256dh`` is an uncompressed P-256 point and ``auth`` 16 bytes."""
    point = _b64decode(p256dh)
    if len(point) != 65 or point[0] != 0x04:
        raise Invalid("keys.p256dh must be an uncompressed P-256 point (65 bytes)", code="invalid_keys")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise Invalid("keys.p256dh is not a point on P-256", code="invalid_keys") from None
    if len(_b64decode(auth)) != 16:
        raise Invalid("keys.auth must be 16 bytes", code="invalid_keys")


def endpoint_hash(endpoint: str) -> str:
    """The SHA-256 hex digest that makes an endpoint unique per shop."""
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


def _expiration(ms: float | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms else None


def _by_endpoint(session: orm.Session, shop: Shop, endpoint: str) -> Subscription | None:
    return session.scalars(sa.select(Subscription).where(
        Subscription.shop_id == shop.id, Subscription.endpoint_hash == endpoint_hash(endpoint))).one_or_none()


def _vapid_key_id(session: orm.Session, shop: Shop, given: str | None, instance_key: str | None) -> int | None:
    """The id of the shop's key named ``given`` (None: the instance key); raises ``Invalid`` for another key."""
    if given is None or given == instance_key:
        return None
    key = key_by_public(session, shop.id, given)
    if key is None:
        raise Invalid("application_server_key is not one of this shop's VAPID keys", code="unknown_vapid_key")
    return key.id


def _replace(session: orm.Session, shop: Shop, old_endpoint: str, new: Subscription, now: datetime) -> bool:
    """End the subscription at ``old_endpoint`` in favour of ``new``: same visitor, its open pushes
    move over. Returns whether there was one to replace."""
    old = _by_endpoint(session, shop, old_endpoint)
    if old is None or old.id == new.id:
        return False
    new.visitor_id = old.visitor_id
    if old.status == SubscriptionStatus.ACTIVE.value:
        old.status = SubscriptionStatus.EXPIRED.value
        old.ended_at = now
    session.execute(sa.update(Push).where(Push.subscription_id == old.id, Push.status.in_(OPEN_PUSH_STATUSES))
                    .values(subscription_id=new.id, visitor_id=old.visitor_id))
    log.info("subscription %s replaces %s (re-subscribed)", new.id, old.id)
    return True


def upsert_subscription(session: orm.Session, shop: Shop, data: SubscribeIn, config: Mapping[str, Any],
                        now: datetime, before_new: Callable[[], None] | None = None,
                        instance_key: str | None = None) -> Upserted:
    """Store a browser's subscription, or refresh the one with the same endpoint.

    The VAPID key it was made with is ``data.application_server_key`` (``instance_key``: the
    instance's), or for a new subscription that names none, the shop's current key. Raises
    ``Invalid`` for an endpoint the policy refuses, bad keys, or a VAPID key not the shop's.
    ``before_new`` is called before an endpoint the shop has not seen is stored (the caller's
    rate limit: it may raise). With ``data.replaces``, the subscription at that endpoint ends in
    favour of this one (``_replace``), which is then not announced as new.
    A known endpoint that was unsubscribed or expired becomes active again (a re-subscribe).
    Only a new subscription is announced to the presets (``on_subscription_created``, e.g. for
    the welcome push).
    """
    sub_in = data.subscription
    endpoint = check_endpoint(sub_in.endpoint, config)
    check_keys(sub_in.keys.p256dh, sub_in.keys.auth)
    vapid_key_id = _vapid_key_id(session, shop, data.application_server_key, instance_key)
    subscription = _by_endpoint(session, shop, endpoint)
    if subscription is None and before_new is not None:
        before_new()
    visitor = get_or_create_visitor(session, shop, data.visitor_id, now)
    if data.locale:
        visitor.locale = data.locale
    if data.timezone:
        visitor.timezone = data.timezone
    fields = dict(visitor_id=visitor.id, p256dh=sub_in.keys.p256dh, auth=sub_in.keys.auth,
                  expiration_time=_expiration(sub_in.expirationTime), locale=data.locale,
                  timezone=data.timezone, last_seen_at=now)
    if data.application_server_key is not None:
        fields["vapid_key_id"] = vapid_key_id
    elif subscription is None:
        fields["vapid_key_id"] = (key.id if (key := current_key(session, shop.id)) is not None else None)

    created = False
    if subscription is None:
        subscription = Subscription(shop_id=shop.id, endpoint=endpoint, endpoint_hash=endpoint_hash(endpoint),
                                    status=SubscriptionStatus.ACTIVE.value, created_at=now, **fields)
        try:
            with session.begin_nested():
                session.add(subscription)
            created = True
        except exc.IntegrityError:
            # The same endpoint arrived through a concurrent request: treat it as known.
            subscription = _by_endpoint(session, shop, endpoint)
            if subscription is None:
                raise
    if not created:
        for name, value in fields.items():
            if value is not None or name in ("expiration_time", "vapid_key_id"):
                setattr(subscription, name, value)
        if subscription.status != SubscriptionStatus.ACTIVE.value:
            log.info("subscription %s re-activated (was %s)", subscription.id, subscription.status)
            subscription.status = SubscriptionStatus.ACTIVE.value
            subscription.ended_at = None
    # A replacement is no new subscriber: the presets are not told (no second welcome push).
    replaced = bool(data.replaces) and _replace(session, shop, data.replaces or "", subscription, now)
    session.flush()
    if created and not replaced:
        log.info("shop %s visitor %s: new subscription %s", shop.id, visitor.id, subscription.id)
        hooks.on_subscription_created(session, shop, visitor, subscription, now)
    return Upserted(subscription=subscription, created=created)


def unsubscribe(session: orm.Session, shop: Shop, endpoint: str, now: datetime) -> Subscription | None:
    """Mark the subscription with this endpoint unsubscribed; None when the shop has no such endpoint."""
    subscription = _by_endpoint(session, shop, endpoint)
    if subscription is None:
        return None
    if subscription.status == SubscriptionStatus.ACTIVE.value:
        subscription.status = SubscriptionStatus.UNSUBSCRIBED.value
        subscription.ended_at = now
        log.info("subscription %s unsubscribed", subscription.id)
    return subscription
