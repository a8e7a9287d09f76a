"""Shops' own VAPID keys: rotation, the key a shop's widget subscribes with, retirement.

A shop starts on the instance key (``VAPID_PRIVATE_KEY_FILE``, no row here). ``rotate`` gives
it a key of its own; the one it replaces keeps signing the pushes of the subscriptions made
with it (``retiring``) until none of them is live, then it is ``retired``. A subscription's
``vapid_key_id`` NULL means the instance key. The private keys are PEM in the database, like
the instance key in its file: never logged, never returned by an API.
"""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat, PublicFormat,
                                                          load_pem_private_key)
from sqlalchemy import orm

from server.core.errors import Invalid
from server.core.models import Shop, Subscription, SubscriptionStatus, VapidKey, VapidKeyStatus

log = logging.getLogger(__name__)

LIVE = SubscriptionStatus.ACTIVE.value


def b64url(data: bytes) -> str:
    """Base64url without padding, as the Push API wants keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_b64(key: ec.EllipticCurvePublicKey) -> str:
    """A public key as the browser's ``applicationServerKey``: base64url of the 65-byte point."""
    return b64url(key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def new_pair() -> tuple[str, str]:
    """A fresh P-256 key pair: (public key base64url, private key PEM)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    return public_b64(private.public_key()), pem


def pair_from_pem(pem: str | bytes) -> tuple[str, str]:
    """(public key base64url, PKCS#8 PEM) of a P-256 private key given as PEM; raises ``Invalid``."""
    try:
        private = load_pem_private_key(pem.encode("ascii") if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise Invalid("not an unencrypted PEM private key", code="invalid_vapid_key") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise Invalid("a VAPID key must be a P-256 (prime256v1) EC key", code="invalid_vapid_key")
    pkcs8 = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    return public_b64(private.public_key()), pkcs8


def current_key(session: orm.Session, shop_id: int) -> VapidKey | None:
    """The key a shop's widget subscribes with: its newest active key, or None for the instance key."""
    return session.scalars(sa.select(VapidKey).where(
        VapidKey.shop_id == shop_id, VapidKey.status == VapidKeyStatus.ACTIVE.value)
        .order_by(VapidKey.created_at.desc(), VapidKey.id.desc()).limit(1)).first()


def key_by_public(session: orm.Session, shop_id: int, public_key: str) -> VapidKey | None:
    """The shop's key with this public key (any status), or None."""
    return session.scalars(sa.select(VapidKey).where(VapidKey.shop_id == shop_id, VapidKey.public_key == public_key)
                           .order_by(VapidKey.id).limit(1)).first()


def private_pems(session: orm.Session, ids: set[int]) -> dict[int, str]:
    """The private keys (PEM) of these key ids, for the sender."""
    if not ids:
        return {}
    rows = session.execute(sa.select(VapidKey.id, VapidKey.private_key_pem).where(VapidKey.id.in_(ids)))
    return {key_id: pem for key_id, pem in rows}


def rotate(session: orm.Session, shop: Shop, now: datetime) -> VapidKey:
    """Give ``shop`` a new current key; its active keys become ``retiring`` (they still sign for
    the subscriptions made with them). Returns the new key."""
    public, pem = new_pair()
    for old in session.scalars(sa.select(VapidKey).where(
            VapidKey.shop_id == shop.id, VapidKey.status == VapidKeyStatus.ACTIVE.value)):
        old.status = VapidKeyStatus.RETIRING.value
    key = VapidKey(shop_id=shop.id, public_key=public, private_key_pem=pem,
                   status=VapidKeyStatus.ACTIVE.value, created_at=now)
    session.add(key)
    session.flush()
    log.info("shop %s: VAPID key %s is current (rotated)", shop.id, key.id)
    retire_unused(session, now, shop.id)
    return key


def adopt(session: orm.Session, shop: Shop, pem: str | bytes, now: datetime, *,
          status: str = VapidKeyStatus.RETIRING.value) -> VapidKey:
    """The shop's key with this private key, added (with ``status``) when the shop has none; raises ``Invalid``."""
    public, pkcs8 = pair_from_pem(pem)
    key = key_by_public(session, shop.id, public)
    if key is None:
        key = VapidKey(shop_id=shop.id, public_key=public, private_key_pem=pkcs8, status=status, created_at=now)
        session.add(key)
        session.flush()
        log.info("shop %s: VAPID key %s imported (%s)", shop.id, key.id, status)
    return key


def live_counts(session: orm.Session, shop_id: int) -> dict[int | None, int]:
    """How many live subscriptions of the shop use each key (None: the instance key)."""
    rows = session.execute(sa.select(Subscription.vapid_key_id, sa.func.count()).where(
        Subscription.shop_id == shop_id, Subscription.status == LIVE).group_by(Subscription.vapid_key_id))
    return {key_id: int(n) for key_id, n in rows}


def retire_unused(session: orm.Session, now: datetime, shop_id: int | None = None) -> int:
    """Retire the ``retiring`` keys (of one shop, or all) that no live subscription uses; return how many."""
    in_use = sa.select(Subscription.id).where(Subscription.vapid_key_id == VapidKey.id,
                                              Subscription.status == LIVE).exists()
    query = sa.select(VapidKey).where(VapidKey.status == VapidKeyStatus.RETIRING.value, ~in_use)
    if shop_id is not None:
        query = query.where(VapidKey.shop_id == shop_id)
    retired = 0
    for key in session.scalars(query):
        key.status = VapidKeyStatus.RETIRED.value
        key.retired_at = now
        retired += 1
        log.info("shop %s: VAPID key %s retired (no live subscription uses it)", key.shop_id, key.id)
    if retired:
        session.flush()
    return retired


@dataclass(frozen=True)
class KeyStatus:
    """One row of ``vapid status``: a key (id None: the instance key) and its live subscriptions."""

    id: int | None
    public_key: str
    status: str
    created_at: datetime | None
    retired_at: datetime | None
    live_subscriptions: int

    def as_json(self) -> dict[str, object]:
        """The row as JSON (times in ISO 8601)."""
        return {"id": self.id, "public_key": self.public_key, "status": self.status,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "retired_at": self.retired_at.isoformat() if self.retired_at else None,
                "live_subscriptions": self.live_subscriptions}


def key_status(session: orm.Session, shop: Shop, instance_public_key: str, now: datetime) -> list[KeyStatus]:
    """The shop's keys, oldest first, after retiring the unused ones; the instance key first
    when the shop still uses it (its status: ``active`` while current, else ``retiring``)."""
    retire_unused(session, now, shop.id)
    counts = live_counts(session, shop.id)
    keys = list(session.scalars(sa.select(VapidKey).where(VapidKey.shop_id == shop.id)
                                .order_by(VapidKey.created_at, VapidKey.id)))
    rows = []
    has_own = any(k.status == VapidKeyStatus.ACTIVE.value for k in keys)
    if not has_own or counts.get(None):
        rows.append(KeyStatus(None, instance_public_key,
                              VapidKeyStatus.RETIRING.value if has_own else VapidKeyStatus.ACTIVE.value,
                              None, None, counts.get(None, 0)))
    rows.extend(KeyStatus(k.id, k.public_key, k.status, k.created_at, k.retired_at, counts.get(k.id, 0)) for k in keys)
    return rows
