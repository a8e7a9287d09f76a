"""Push subscriptions: an upsert by endpoint, and unsubscribing.

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
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import exc, orm

from server.core import fields
from server.core.fields import Locale
from server.delivery.endpoints import MAX_ENDPOINT_LENGTH, check_endpoint
from server.core.errors import Invalid
from server.core.models import Shop, Subscription, SubscriptionStatus
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
    # A zone this machine's tz database does not know is dropped, not refused: the subscription
    # matters more than its send-time hint.
    timezone: Annotated[str | None, BeforeValidator(fields.zone)] = None


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


def upsert_subscription(session: orm.Session, shop: Shop, data: SubscribeIn, config: Mapping[str, Any],
                        now: datetime, before_new: Callable[[], None] | None = None) -> Upserted:
    """Store a browser's subscription, or refresh the one with the same endpoint.

    Raises ``Invalid`` for an endpoint the policy refuses or bad keys. ``before_new`` is called
    before an endpoint the shop has not seen is stored (the caller's rate limit: it may raise).
    A known endpoint that was unsubscribed or expired becomes active again (a re-subscribe).
    Only a new subscription is announced to the presets (``on_subscription_created``, e.g. for
    the welcome push).
    """
    sub_in = data.subscription
    endpoint = check_endpoint(sub_in.endpoint, config)
    check_keys(sub_in.keys.p256dh, sub_in.keys.auth)
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
            if value is not None or name == "expiration_time":
                setattr(subscription, name, value)
        if subscription.status != SubscriptionStatus.ACTIVE.value:
            log.info("subscription %s re-activated (was %s)", subscription.id, subscription.status)
            subscription.status = SubscriptionStatus.ACTIVE.value
            subscription.ended_at = None
    session.flush()
    if created:
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
