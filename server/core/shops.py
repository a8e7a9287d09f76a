"""Shops as every part of the service finds them: by public key (collect API, webhooks), by
admin token (merchant API, dashboard), from a per-process cache (the collect API)."""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import orm

from server.core.errors import Invalid, NotFound
from server.core.models import Shop
from server.core.vapid_keys import current_key


DEFAULT_PROMPT: dict[str, Any] = {
    "text": "Get a note when your cart is waiting or your order ships?",
    "color": "#1f6feb",
    "after_pageviews": 2,
    "after_seconds": 0,
    "dismiss_days": 14,
}


def hash_token(token: str) -> str:
    """SHA-256 hex of an admin token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalize_origin(raw: str) -> str:
    """Return ``scheme://host[:port]`` in lower case; raises Invalid for anything else."""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port  # raises ValueError for a port that is no number or out of range
    except ValueError:
        raise Invalid(f"origin must be an http(s) URL with a valid port: {raw!r}", code="invalid_origin") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"origin must be an http(s) URL: {raw!r}", code="invalid_origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise Invalid(f"origin must have no path, query or credentials: {raw!r}", code="invalid_origin")
    host = parts.hostname.lower()
    default = {"http": 80, "https": 443}[parts.scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}"


def shop_by_public_key(session: orm.Session, public_key: str) -> Shop:
    """The shop with this public key; raises NotFound."""
    shop = session.scalars(sa.select(Shop).where(Shop.public_key == public_key)).one_or_none()
    if shop is None:
        raise NotFound("unknown shop", code="unknown_shop")
    return shop


@dataclass(frozen=True, slots=True)
class ShopRef:
    """What the collect API needs of a shop on every call, without a query."""

    id: int
    public_key: str
    origins: frozenset[str]
    sw_path: str
    prompt: dict[str, Any]
    platform: str = "custom"
    vapid_public_key: str | None = None  # the shop's current VAPID key; None: the instance key


class ShopCache:
    """Public key to ``ShopRef``, kept ``ttl`` seconds in this process.

    The collect API is called on every page view: this spares it a query per call. A change
    of origins, prompt, worker path or VAPID key made in this process is seen at once (``forget``); one
    made in another process within ``ttl`` seconds. Unknown keys are not kept.
    """

    def __init__(self, ttl: float = 30.0, max_size: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, ShopRef]] = {}
        self._lock = threading.Lock()

    def get(self, session: Callable[[], orm.Session], public_key: str) -> ShopRef:
        """The shop with this public key (read through ``session()`` when not kept); raises NotFound."""
        now = self._monotonic()
        entry = self._entries.get(public_key)
        if entry is not None and entry[0] > now:
            return entry[1]
        shop = shop_by_public_key(session(), public_key)
        key = current_key(session(), shop.id)
        ref = ShopRef(shop.id, shop.public_key, frozenset(shop.origins or ()), shop.sw_path, dict(shop.prompt or {}),
                      shop.platform or "custom", key.public_key if key is not None else None)
        with self._lock:
            if len(self._entries) >= self.max_size:
                self._entries.clear()
            self._entries[public_key] = (now + self.ttl, ref)
        return ref

    def forget(self, public_key: str) -> None:
        """Drop one shop (its settings changed)."""
        with self._lock:
            self._entries.pop(public_key, None)


def shop_cache(app: Flask) -> ShopCache:
    """The app's ``ShopCache`` (kept ``SHOP_CACHE_SECONDS``), created on first use."""
    cache = app.extensions.get("pushcart.shop_cache")
    if cache is None:
        cache = app.extensions.setdefault("pushcart.shop_cache", ShopCache(app.config["SHOP_CACHE_SECONDS"]))
    return cache


def list_shops(session: orm.Session, platform_domain: str | None = None) -> list[Shop]:
    """Every shop in creation order, or those whose ``platform_domain`` is this one (any case)."""
    query = sa.select(Shop).order_by(Shop.id)
    if platform_domain is not None:
        query = query.where(Shop.platform_domain == platform_domain.strip().lower())
    return list(session.scalars(query))


def shop_by_admin_token(session: orm.Session, token: str) -> Shop | None:
    """The shop whose admin token this is, or None."""
    if not token:
        return None
    digest = hash_token(token)
    shop = session.scalars(sa.select(Shop).where(Shop.admin_token_hash == digest)).one_or_none()
    # The lookup is by hash, so timing reveals nothing of the token; compare once more anyway.
    if shop is not None and hmac.compare_digest(shop.admin_token_hash, digest):
        return shop
    return None


def webhook_secrets(shop: Shop, now: datetime) -> list[str]:
    """The secrets a delivery to the shop may be signed with: the current one, and the one before
    the last rotation while its grace period lasts."""
    keys = [shop.secret]
    if shop.previous_secret and shop.previous_secret_until is not None and now < shop.previous_secret_until:
        keys.append(shop.previous_secret)
    return keys
