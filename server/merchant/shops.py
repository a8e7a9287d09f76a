"""Shops: creation, settings and authentication of the merchant's admin token."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import orm

from server.core.fields import Currency, zone as known_zone
from server.core.errors import Invalid
from server.core.models import PresetSetting, Shop
from server.planning.content import LOCALE_TAG, normalize_locale
from server.planning.defaults import DEFAULTS
from server.core.shops import DEFAULT_PROMPT, hash_token, normalize_origin


@dataclass(frozen=True)
class NewShop:
    """A created shop with the two secrets that are shown only once."""

    shop: Shop
    secret: str
    admin_token: str

    def as_json(self) -> dict[str, Any]:
        """The ``shop create`` output of the contract."""
        return {
            "id": self.shop.id,
            "name": self.shop.name,
            "public_key": self.shop.public_key,
            "secret": self.secret,
            "admin_token": self.admin_token,
            "origins": list(self.shop.origins),
        }


def new_admin_token() -> str:
    """A fresh admin token (shown once; only its hash is kept)."""
    return "adm_" + secrets.token_urlsafe(32)


def reissue_admin_token(shop: Shop) -> str:
    """Give ``shop`` a new admin token and return it: the old token stops working at once, and
    dashboard sessions opened with it are logged out (they hold a prefix of the old hash)."""
    token = new_admin_token()
    shop.admin_token_hash = hash_token(token)
    return token


# How long the secret before a rotation stays valid: deliveries signed and queued before the
# rotation (platform retries last hours) still get through.
SECRET_GRACE = timedelta(hours=24)


def new_webhook_secret() -> str:
    """A fresh webhook secret (``whsec_`` and 32 random bytes)."""
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class RotatedSecret:
    """The shop's new webhook secret and until when the one before it is still accepted."""

    secret: str
    previous_valid_until: datetime

    def as_json(self, public_key: str) -> dict[str, Any]:
        """The answer of ``shop secret --rotate`` and ``POST /v1/admin/secret/rotate``."""
        return {"public_key": public_key, "secret": self.secret,
                "previous_secret_valid_until": self.previous_valid_until.isoformat()}


def rotate_secret(shop: Shop, now: datetime) -> RotatedSecret:
    """Give ``shop`` a new webhook secret; the current one stays valid for ``SECRET_GRACE``.

    A second rotation within the grace period ends the first one's grace: only the secret just
    replaced is kept (the shop's back end was meant to have switched already).
    """
    shop.previous_secret, shop.previous_secret_until = shop.secret, now + SECRET_GRACE
    shop.secret = new_webhook_secret()
    return RotatedSecret(shop.secret, shop.previous_secret_until)


def create_shop(session: orm.Session, name: str, origins: list[str], now: datetime) -> NewShop:
    """Create a shop with fresh keys and the default preset settings."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("name must be 1 to 200 characters", code="invalid_name")
    normalized = sorted({normalize_origin(o) for o in origins})
    if not normalized:
        raise Invalid("at least one origin is needed", code="invalid_origin")
    secret = new_webhook_secret()
    admin_token = new_admin_token()
    shop = Shop(
        public_key="pk_" + secrets.token_urlsafe(18),
        name=name,
        secret=secret,
        admin_token_hash=hash_token(admin_token),
        origins=normalized,
        sw_path="/pushcart-sw.js",
        prompt=dict(DEFAULT_PROMPT),
        frequency_cap_per_24h=3,
        timezone="UTC",
        attribution_hours=72,
        currency="USD",
        alert_min_drop_percent=10,
        alert_window_days=7,
        pause_unengaged_after=0,
        created_at=now,
    )
    session.add(shop)
    session.flush()
    for kind, spec in DEFAULTS.items():
        session.add(PresetSetting(
            shop_id=shop.id, kind=kind, enabled=True, delays=list(spec["delays"]),
            title=spec["title"], body=spec["body"], icon=spec.get("icon", ""),
            image=spec.get("image", ""), url=spec.get("url", ""), updated_at=now,
        ))
    session.flush()
    return NewShop(shop=shop, secret=secret, admin_token=admin_token)


def settings_as_json(shop: Shop) -> dict[str, Any]:
    """The merchant-visible settings (no secret, no token: the platform secret only as set or not)."""
    quiet = None
    if shop.quiet_hours_start and shop.quiet_hours_end:
        quiet = {"start": shop.quiet_hours_start, "end": shop.quiet_hours_end}
    return {
        "name": shop.name,
        "public_key": shop.public_key,
        "origins": list(shop.origins),
        "sw_path": shop.sw_path,
        "prompt": {**DEFAULT_PROMPT, "locales": {}, **(shop.prompt or {})},
        "frequency_cap_per_24h": shop.frequency_cap_per_24h,
        "quiet_hours": quiet,
        "timezone": shop.timezone,
        "attribution_hours": shop.attribution_hours,
        "currency": shop.currency,
        "platform": shop.platform or "custom",
        "platform_domain": shop.platform_domain,
        "platform_secret_set": bool(shop.platform_secret),
        "alert_min_drop_percent": shop.alert_min_drop_percent,
        "alert_window_days": shop.alert_window_days,
        "pause_unengaged_after": shop.pause_unengaged_after,
    }


class PromptLocale(BaseModel):
    """The soft-ask's text and button labels in one locale (empty: the default, or the built-in label)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", max_length=300)
    yes: str = Field(default="", max_length=40)
    no: str = Field(default="", max_length=40)


class PromptSettings(BaseModel):
    """The soft-ask prompt of the widget."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(default=DEFAULT_PROMPT["text"], min_length=1, max_length=300)
    color: str = Field(default=DEFAULT_PROMPT["color"], pattern=r"^#[0-9a-fA-F]{6}$")
    after_pageviews: int = Field(default=DEFAULT_PROMPT["after_pageviews"], ge=0, le=100)
    after_seconds: int = Field(default=DEFAULT_PROMPT["after_seconds"], ge=0, le=3600)
    dismiss_days: int = Field(default=DEFAULT_PROMPT["dismiss_days"], ge=0, le=365)
    # Per-locale texts and labels, e.g. {"de": {"text", "yes", "no"}}; see server.collect.prompt.
    locales: dict[str, PromptLocale] = Field(default_factory=dict, max_length=20)


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class SettingsUpdate(BaseModel):
    """A partial update of the shop's settings (absent fields are left alone)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    origins: list[str] | None = Field(default=None, min_length=1, max_length=20)
    sw_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9._~/-]{1,190}\.js$")
    prompt: PromptSettings | None = None
    frequency_cap_per_24h: int | None = Field(default=None, ge=0, le=50)
    quiet_hours: QuietHours | None = None
    timezone: str | None = Field(default=None, max_length=64)
    attribution_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    currency: Currency | None = None
    platform: Literal["custom", "shopify", "woocommerce"] | None = None
    platform_domain: str | None = Field(default=None, max_length=255)
    # Write-only: "" clears it. GET shows only ``platform_secret_set``, accepted back and ignored.
    platform_secret: str | None = Field(default=None, max_length=255)
    platform_secret_set: bool | None = None
    # Alerts: the smallest price drop that alerts (percent), one alert per product and kind per
    # subscription within this many days; the engagement pause (0 = off, else MIN_PAUSE_AFTER+).
    alert_min_drop_percent: int | None = Field(default=None, ge=1, le=90)
    alert_window_days: int | None = Field(default=None, ge=1, le=90)
    pause_unengaged_after: int | None = Field(default=None, ge=0, le=100)


# Pausing after one or two ignored pushes would silence nearly every new subscriber.
MIN_PAUSE_AFTER = 3

SHOPIFY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$")


def normalize_platform_domain(platform: str, raw: str) -> str | None:
    """The myshopify domain (Shopify) or the WordPress site URL (WooCommerce), as stored; None
    for an empty value; raises Invalid for anything else."""
    value = raw.strip()
    if not value:
        return None
    if platform == "shopify":
        host = value.lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not SHOPIFY_DOMAIN.match(host):
            raise Invalid("platform_domain must be the shop's myshopify domain, e.g. my-shop.myshopify.com",
                          code="invalid_field")
        return host
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise Invalid("platform_domain must be the site's URL, e.g. https://shop.example", code="invalid_field")
    netloc = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


# Fields ``settings_as_json`` shows that no update may change: a client may send back what it
# read, so an unchanged value is ignored and a changed one refused.
READ_ONLY_SETTINGS: dict[str, str] = {
    "public_key": "it is in the shop's script tag and cannot be changed",
}


def without_read_only(shop: Shop, raw: Any) -> Any:
    """``raw`` (a settings body) without the read-only fields it repeats unchanged; raises
    Invalid (422) naming a read-only field it changes. Anything that is not an object is left
    for the parser to refuse."""
    if not isinstance(raw, dict):
        return raw
    current = settings_as_json(shop)
    kept = dict(raw)
    for name, why in READ_ONLY_SETTINGS.items():
        if name in kept:
            if kept.pop(name) != current[name]:
                raise Invalid(f"{name}: read-only ({why})", code="read_only_field")
    return kept


def _prompt_locales(locales: dict[str, PromptLocale]) -> dict[str, dict[str, str]]:
    checked: dict[str, dict[str, str]] = {}
    for raw_tag, texts in locales.items():
        if not LOCALE_TAG.match(raw_tag):
            raise Invalid(f"prompt.locales: {raw_tag[:40]!r} is not a locale such as de or fr-CA",
                          code="invalid_field")
        values = {name: value.strip() for name, value in texts.model_dump().items() if value.strip()}
        if values:
            checked[normalize_locale(raw_tag)] = values
    return checked


def update_settings(shop: Shop, update: SettingsUpdate) -> Shop:
    """Apply a validated settings update; raises Invalid for a bad origin or time zone."""
    fields = update.model_fields_set
    if "name" in fields and update.name is not None:
        shop.name = update.name.strip()
    if "origins" in fields and update.origins is not None:
        shop.origins = sorted({normalize_origin(o) for o in update.origins})
    if "sw_path" in fields and update.sw_path is not None:
        if ".." in update.sw_path:
            raise Invalid("sw_path must not contain '..'", code="invalid_field")
        shop.sw_path = update.sw_path
    if "prompt" in fields and update.prompt is not None:
        shop.prompt = {**update.prompt.model_dump(exclude={"locales"}),
                       "locales": _prompt_locales(update.prompt.locales)}
    if "frequency_cap_per_24h" in fields and update.frequency_cap_per_24h is not None:
        shop.frequency_cap_per_24h = update.frequency_cap_per_24h
    if "quiet_hours" in fields:
        shop.quiet_hours_start = update.quiet_hours.start if update.quiet_hours else None
        shop.quiet_hours_end = update.quiet_hours.end if update.quiet_hours else None
    if "timezone" in fields and update.timezone is not None:
        zone = known_zone(update.timezone)  # the zone as the tz database names it (trimmed)
        if zone is None:
            raise Invalid(f"unknown time zone {update.timezone!r}", code="invalid_field")
        shop.timezone = zone
    if "attribution_hours" in fields and update.attribution_hours is not None:
        shop.attribution_hours = update.attribution_hours
    if "currency" in fields and update.currency is not None:
        shop.currency = update.currency
    if "platform" in fields and update.platform is not None:
        shop.platform = update.platform
    if "platform_domain" in fields or ("platform" in fields and shop.platform_domain):
        raw = update.platform_domain if "platform_domain" in fields else shop.platform_domain
        shop.platform_domain = normalize_platform_domain(shop.platform, raw or "")
    if "platform_secret" in fields and update.platform_secret is not None:
        shop.platform_secret = update.platform_secret.strip() or None
    if "alert_min_drop_percent" in fields and update.alert_min_drop_percent is not None:
        shop.alert_min_drop_percent = update.alert_min_drop_percent
    if "alert_window_days" in fields and update.alert_window_days is not None:
        shop.alert_window_days = update.alert_window_days
    if "pause_unengaged_after" in fields and update.pause_unengaged_after is not None:
        if 0 < update.pause_unengaged_after < MIN_PAUSE_AFTER:
            raise Invalid(f"pause_unengaged_after: 0 (off) or {MIN_PAUSE_AFTER} to 100 pushes", code="invalid_field")
        shop.pause_unengaged_after = update.pause_unengaged_after
    return shop
