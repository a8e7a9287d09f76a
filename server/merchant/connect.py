"""Connect tokens: one value the merchant pastes into a plugin, which then connects itself.

``issue_token`` makes a random token valid for ``TOKEN_LIFETIME``; the shop keeps only its
SHA-256, and one token at a time (a new one replaces the one before). The value to paste is
``PUBLIC_URL/connect/<public_key>.<token>``. ``redeem`` (the plugin's ``POST /v1/connect``)
checks it in constant time, spends it with one conditional UPDATE (so two calls racing with
the same token cannot both win), registers the site's origin and platform, and answers what
the plugin needs: the public key, the widget and worker, the webhook URLs and secret.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import orm

from server.core.embed import worker_source
from server.core.errors import Unauthorized
from server.core.models import Shop
from server.core.shops import hash_token, normalize_origin
from server.merchant import audit
from server.merchant.connection import allow_origin

TOKEN_LIFETIME = timedelta(hours=1)
VALUE_PATH = "/connect/"
WOOCOMMERCE_TOPICS = ["order.created", "order.updated", "product.updated"]
SHOPIFY_TOPICS = ["checkouts/create", "checkouts/update", "orders/paid", "fulfillments/create", "products/update"]
NATIVE_TOPICS = ["checkouts", "orders", "shipments", "products"]


class ConnectIn(BaseModel):
    """The plugin's call: the value pasted, the site's origin, its platform and, optionally, the
    secret its platform already signs webhooks with (kept as ``platform_secret``)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=500)
    origin: str = Field(min_length=1, max_length=255)
    platform: Literal["woocommerce", "shopify", "custom"] = "custom"
    webhook_secret: str | None = Field(default=None, pattern=r"^[\x21-\x7e]{8,255}$")


@dataclass(frozen=True)
class IssuedToken:
    """A fresh connect token's value to paste, and when it stops working."""

    value: str
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The answer of ``POST /v1/admin/connect-token``."""
        return {"connect_value": self.value, "expires_at": self.expires_at.isoformat()}


def issue_token(shop: Shop, now: datetime, public_url: str) -> IssuedToken:
    """A new connect token for ``shop`` (the one before stops working); only its hash is stored."""
    token = secrets.token_urlsafe(32)
    shop.connect_token_hash, shop.connect_token_until = hash_token(token), now + TOKEN_LIFETIME
    return IssuedToken(f"{public_url}{VALUE_PATH}{shop.public_key}.{token}", shop.connect_token_until)


def _split(value: str) -> tuple[str, str]:
    """``(public_key, token)`` from the pasted value (the whole URL, or only its last part)."""
    tail = value.strip().rsplit(VALUE_PATH, 1)[-1].strip("/")
    public_key, _, token = tail.partition(".")
    return public_key, token


def redeem(session: orm.Session, data: ConnectIn, now: datetime, public_url: str) -> tuple[Shop, dict[str, Any]]:
    """Spend a connect token: register the site and answer what the plugin needs.

    Raises Unauthorized ``invalid_connect_token`` alike for an unknown shop, a wrong, spent or
    expired token; Invalid for a bad origin (the token is then not spent).
    """
    refused = Unauthorized("this connect value is not valid (wrong, used or older than an hour): "
                           "make a new one on Pushcart's Install page", code="invalid_connect_token")
    public_key, token = _split(data.token)
    origin = normalize_origin(data.origin)
    if not public_key or not token or len(token) > 100:
        raise refused
    shop = session.scalars(sa.select(Shop).where(Shop.public_key == public_key)).one_or_none()
    digest = hash_token(token)
    if (shop is None or shop.connect_token_hash is None or shop.connect_token_until is None
            or not hmac.compare_digest(shop.connect_token_hash, digest) or now >= shop.connect_token_until):
        raise refused
    spent = session.execute(
        sa.update(Shop).where(Shop.id == shop.id, Shop.connect_token_hash == digest,
                              Shop.connect_token_until > now)
        .values(connect_token_hash=None, connect_token_until=None)
        .execution_options(synchronize_session=False))
    if spent.rowcount != 1:
        raise refused  # spent by a call racing this one
    session.refresh(shop)
    with audit.settings_change(session, shop, audit.PLUGIN, now):
        allow_origin(session, shop, origin)  # as the dashboard's button does: its refusals are forgotten too
        shop.platform = data.platform
        if data.platform == "woocommerce" and not shop.platform_domain:
            shop.platform_domain = origin
        if data.webhook_secret:
            shop.platform_secret = data.webhook_secret
    return shop, answer(shop, public_url)


def answer(shop: Shop, public_url: str) -> dict[str, Any]:
    """What a connected plugin needs to know (the webhook secret included: the caller proved
    it holds a fresh token the merchant made)."""
    if shop.platform == "woocommerce":
        webhooks: dict[str, Any] = {"url": f"{public_url}/v1/integrations/woocommerce/{shop.public_key}",
                                    "topics": WOOCOMMERCE_TOPICS}
    elif shop.platform == "shopify":
        webhooks = {"url": f"{public_url}/v1/integrations/shopify/{shop.public_key}", "topics": SHOPIFY_TOPICS}
    else:
        webhooks = {"urls": {t: f"{public_url}/v1/webhooks/{shop.public_key}/{t}" for t in NATIVE_TOPICS}}
    return {
        "public_key": shop.public_key,
        "public_url": public_url,
        "widget_url": f"{public_url}/widget.js",
        "worker_path": shop.sw_path,
        "worker_source": worker_source(public_url),
        "origins": list(shop.origins),
        "platform": shop.platform,
        "platform_domain": shop.platform_domain,
        "webhook_secret": shop.secret,
        "webhooks": webhooks,
    }
