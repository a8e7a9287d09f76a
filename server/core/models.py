"""The data model (SQLAlchemy 2 typed models). Times are UTC; money is exact ``Numeric``.

Every row below ``Shop`` carries ``shop_id`` so every query can be scoped to one shop.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from server.core import rollups, streaks
from server.core.rollups import TEST_DEVICE_PREFIX
from server.core.db import Base, UTCDateTime
from server.core.kinds import ALERT_KINDS, ALL_KINDS, PRESET_KINDS, RECORD_KINDS, TRANSACTIONAL_KINDS

Money = sa.Numeric(14, 2)
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class PushKind(str, enum.Enum):
    """The five preset pushes, then the alerts a visitor asks for (``server.planning.alerts``)."""

    WELCOME = "welcome"
    BROWSE_ABANDONMENT = "browse_abandonment"
    CHECKOUT_RECOVERY = "checkout_recovery"
    REPURCHASE = "repurchase"
    SHIPPED = "shipped"
    BACK_IN_STOCK = "back_in_stock"
    PRICE_DROP = "price_drop"


# The kinds with preset settings (``PushKind``'s values, in its order), the alert kinds, every
# kind a push row may have and the transactional ones (exempt from the frequency cap and quiet
# hours) come from the registry of kinds.
KINDS: tuple[str, ...] = PRESET_KINDS
CAMPAIGN_KIND = "campaign"  # a merchant's one-off push to a segment: no PresetSetting


class SubscriptionStatus(str, enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    UNSUBSCRIBED = "unsubscribed"
    # A merchant's test device (``TestDevice``): gets test pushes only, never counted, never an
    # audience (every audience and count asks for ``active``).
    TEST = "test"


class PushStatus(str, enum.Enum):
    """Where an outbox row is. ``pending``/``sending`` are open; the rest are final."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"  # the push service said the subscription is gone (404/410)
    MISSED = "missed"  # its TTL passed before it could be sent
    SKIPPED = "skipped"  # a policy held it back (frequency cap, unsubscribed); reason in ``error``
    CANCELLED = "cancelled"  # a later event made it moot (return visit, paid order, kind disabled)


OPEN_PUSH_STATUSES = (PushStatus.PENDING.value, PushStatus.SENDING.value)


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # The webhook HMAC key: needed in clear to verify signatures; never shown after creation.
    secret: Mapped[str] = mapped_column(sa.String(128))
    # Only a SHA-256 of the admin token is kept, so a database leak gives no dashboard access.
    admin_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    sw_path: Mapped[str] = mapped_column(sa.String(200), default="/pushcart-sw.js")
    prompt: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    frequency_cap_per_24h: Mapped[int] = mapped_column(default=3)
    quiet_hours_start: Mapped[str | None] = mapped_column(sa.String(5))
    quiet_hours_end: Mapped[str | None] = mapped_column(sa.String(5))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    attribution_hours: Mapped[int] = mapped_column(default=72)
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The shop platform (``custom``, ``shopify``, ``woocommerce``), its domain (the myshopify
    # domain, or the WordPress site URL) and the platform's webhook secret (needed in clear to
    # verify its signatures; write-only in the settings).
    platform: Mapped[str] = mapped_column(sa.String(16), default="custom", server_default="custom")
    platform_domain: Mapped[str | None] = mapped_column(sa.String(255))
    platform_secret: Mapped[str | None] = mapped_column(sa.String(255))
    # Alerts (``server.planning.alerts``): the smallest price drop worth a push, in percent of the
    # price the visitor saw, and the window within which one product alerts a subscription once.
    alert_min_drop_percent: Mapped[int] = mapped_column(default=10, server_default="10")
    alert_window_days: Mapped[int] = mapped_column(default=7, server_default="7")
    # Engagement guardrail: skip marketing pushes to a subscription whose last N pushes were all
    # ignored (0 = off). Browsers revoke permission from sites that send much with few clicks.
    pause_unengaged_after: Mapped[int] = mapped_column(default=0, server_default="0")
    # The webhook secret before the last rotation, still accepted until ``previous_secret_until``
    # (deliveries signed and queued before the rotation are not refused).
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The one open connect token (``server.merchant.connect``): only its SHA-256, single use.
    connect_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    connect_token_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # On-site messages (``server.collect.onsite``): at most this many shown to one visitor a day,
    # across all of the shop's messages.
    onsite_daily_cap: Mapped[int] = mapped_column(default=2, server_default="2")


class PresetSetting(Base):
    """A shop's settings for one preset kind: on/off, timing and templates."""

    __tablename__ = "preset_settings"
    __table_args__ = (sa.UniqueConstraint("shop_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    delays: Mapped[list[int]] = mapped_column(JSONType, default=list)  # seconds
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    icon: Mapped[str] = mapped_column(sa.Text, default="")
    image: Mapped[str] = mapped_column(sa.Text, default="")
    url: Mapped[str] = mapped_column(sa.Text, default="")
    # Up to two action buttons, each {"title", "url"} (templates); None or [] for none.
    actions: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType, nullable=True, default=None)
    # Per-locale texts {"de": {"title", "body", "url"}}: the subscriber's locale picks one.
    locales: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSONType, nullable=True, default=None)
    # checkout_recovery only: per-step {"title", "body"} overrides, one per delay at most;
    # an empty text (or a missing step) uses the kind's title/body.
    steps: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType, nullable=True, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Visitor(Base):
    __tablename__ = "visitors"
    __table_args__ = (
        # Also the index of every query by shop (no index of ``shop_id`` alone).
        sa.UniqueConstraint("shop_id", "visitor_key"),
        # Every event updates its visitor, so no index holds ``last_event_at`` and the others
        # leave out the visitors without a value: an update that changes no indexed value writes
        # no index entry (PostgreSQL's heap-only update). The 30-minutes-of-silence sweep reads
        # the engaged visitors by ``engaged_since``, which stays put while a visitor browses.
        sa.Index("ix_visitors_engaged", "engaged_since", postgresql_where=sa.text("engaged_since IS NOT NULL"),
                 sqlite_where=sa.text("engaged_since IS NOT NULL")),
        # A platform checkout webhook's cart token finds the visitor whose widget reported the cart.
        sa.Index("ix_visitors_shop_cart_token", "shop_id", "cart_token",
                 postgresql_where=sa.text("cart_token IS NOT NULL"), sqlite_where=sa.text("cart_token IS NOT NULL")),
        # An order's email finds the visitor who identified with it.
        sa.Index("ix_visitors_email", "email", postgresql_where=sa.text("email IS NOT NULL"),
                 sqlite_where=sa.text("email IS NOT NULL")),
        # The visitor records' order (``merchant.records``): columns an event never changes.
        sa.Index("ix_visitors_shop_first_seen", "shop_id", "first_seen_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    visitor_key: Mapped[str] = mapped_column(sa.String(64))  # the widget's random visitor_id
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the visitor views a product or carts; cleared when a leave is planned for.
    engaged_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    customer_id: Mapped[str | None] = mapped_column(sa.String(128))
    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    referrer: Mapped[str | None] = mapped_column(sa.Text)
    utm_source: Mapped[str | None] = mapped_column(sa.String(200))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(200))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(200))
    landing_url: Mapped[str | None] = mapped_column(sa.Text)
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    # The latest platform cart token the widget reported (``cart_update``), without Shopify's ``?key=``.
    cart_token: Mapped[str | None] = mapped_column(sa.String(128))


class VapidKeyStatus(str, enum.Enum):
    """A shop's VAPID key: ``active`` (the newest is current), ``retiring`` (replaced, still signs
    for the subscriptions made with it), ``retired`` (no live subscription uses it)."""

    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class VapidKey(Base):
    """A shop's own VAPID key pair (``server.core.vapid_keys``). No row means the instance key
    (``VAPID_PRIVATE_KEY_FILE``); a subscription's ``vapid_key_id`` NULL means that one too."""

    __tablename__ = "vapid_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    # base64url of the uncompressed P-256 point: the browser's ``applicationServerKey``.
    public_key: Mapped[str] = mapped_column(sa.String(100))
    # The private key as PEM: a secret like the instance key file. Never logged, never shown
    # except by ``subscribers export --with-vapid`` into a file only the operator can read.
    private_key_pem: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default=VapidKeyStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "endpoint_hash"),
        # The suspect subscriptions of one push service (restore, confirm, metrics): few rows.
        sa.Index("ix_subscriptions_suspect_host", "suspect_host", postgresql_where=sa.text("suspect_host IS NOT NULL"),
                 sqlite_where=sa.text("suspect_host IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(
        sa.ForeignKey("visitors.id", ondelete="CASCADE"), index=True
    )
    # The endpoint is a capability (anyone holding it can push): never logged, never shown.
    endpoint: Mapped[str] = mapped_column(sa.Text)
    endpoint_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 hex, for the unique index
    p256dh: Mapped[str] = mapped_column(sa.String(128))
    auth: Mapped[str] = mapped_column(sa.String(64))
    expiration_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default=SubscriptionStatus.ACTIVE.value)
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The VAPID key the browser subscribed with (NULL: the instance key): pushes are signed with it.
    vapid_key_id: Mapped[int | None] = mapped_column(sa.ForeignKey("vapid_keys.id"), index=True)
    # Held, not expired: its push service answered 404/410 during a storm of such answers
    # (``server.delivery.storm``). Still ``active``; ``suspect_host`` is that service's origin.
    suspect_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspect_host: Mapped[str | None] = mapped_column(sa.String(255))
    # Sent pushes since its latest click (test pushes aside), kept by triggers on pushes
    # (``server.core.streaks``): unengaged over n when at least n.
    unclicked_streak: Mapped[int] = mapped_column(default=0, server_default="0")


class TestDevice(Base):
    """A browser the merchant subscribed from the dashboard to receive test pushes.

    Its subscription (status ``test``) belongs to a visitor of its own whose key starts with
    ``TEST_DEVICE_PREFIX`` (a ``:`` no widget id has), kept out of the visitor records; removing
    the device deletes that visitor, and with it the subscription.
    """

    __tablename__ = "test_devices"
    __test__ = False  # a model, not a pytest class (its name starts with "Test")

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
                                                 unique=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)




class PushHost(Base):
    """One push service (an endpoint origin) as the dispatchers see it: a sliding window of its
    answers and how many said 404/410 (gone), its usual share of gone, and its storm state
    (``server.delivery.storm``). Shared by every worker process, updated once per batch."""

    __tablename__ = "push_hosts"

    host: Mapped[str] = mapped_column(sa.String(255), primary_key=True)  # https://fcm.googleapis.com
    # The window is two buckets: the one that started at ``bucket_start`` and the one before it.
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    answers: Mapped[int] = mapped_column(default=0)
    gone: Mapped[int] = mapped_column(default=0)
    previous_answers: Mapped[int] = mapped_column(default=0)
    previous_gone: Mapped[int] = mapped_column(default=0)
    # The usual share of gone answers (a moving average of calm buckets); None until one closed.
    baseline: Mapped[float | None] = mapped_column(sa.Float)
    storm_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: no storm now
    storm_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the last one ended
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "client_event_id"),
        sa.Index("ix_events_visitor_occurred", "visitor_id", "occurred_at"),
        sa.Index("ix_events_shop_occurred", "shop_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(sa.ForeignKey("visitors.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(32))
    client_event_id: Mapped[str | None] = mapped_column(sa.String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # stamped by the server
    url: Mapped[str | None] = mapped_column(sa.Text)
    referrer: Mapped[str | None] = mapped_column(sa.Text)
    product: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    cart: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class Checkout(Base):
    __tablename__ = "checkouts"
    __table_args__ = (sa.UniqueConstraint("shop_id", "token"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(sa.String(128))
    visitor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("visitors.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str | None] = mapped_column(sa.String(320))
    total: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    item_count: Mapped[int | None] = mapped_column()
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    items: Mapped[list[Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "order_ref"),
        sa.Index("ix_orders_shop_paid", "shop_id", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(sa.String(128))  # the shop's order_id
    visitor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("visitors.id", ondelete="SET NULL"), index=True
    )
    checkout_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checkouts.id", ondelete="SET NULL"))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    status: Mapped[str] = mapped_column(sa.String(16))
    total: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3))
    items: Mapped[list[Any] | None] = mapped_column(JSONType)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Attribution, decided when the order is paid: the latest clicked push in the window.
    attributed_push_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("pushes.id", ondelete="SET NULL")
    )
    attributed_kind: Mapped[str | None] = mapped_column(sa.String(32))


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (sa.UniqueConstraint("shop_id", "shipment_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    shipment_ref: Mapped[str] = mapped_column(sa.String(128))  # the webhook's id
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(sa.String(128))
    tracking_url: Mapped[str | None] = mapped_column(sa.Text)
    carrier: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookReceipt(Base):
    """One row per webhook ``id`` received, so a repeated delivery changes nothing."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (sa.UniqueConstraint("shop_id", "topic", "webhook_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(sa.String(16))
    webhook_id: Mapped[str] = mapped_column(sa.String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RefusedOrigin(Base):
    """An origin the collect API refused for a shop (not one of its origins): the last few per
    shop, with how often and when last, so the dashboard can name the fix."""

    __tablename__ = "refused_origins"
    __table_args__ = (sa.UniqueConstraint("shop_id", "origin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(sa.String(255))
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookStatus(Base):
    """Per shop and source (``native``, ``shopify``, ``woocommerce``): the last delivery accepted
    and the last one refused, with why (the connection check shows them)."""

    __tablename__ = "webhook_status"
    __table_args__ = (sa.UniqueConstraint("shop_id", "source"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(16))
    last_delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    last_failure: Mapped[str | None] = mapped_column(sa.String(300))


class Product(Base):
    """A shop's product or variant as its platform last reported it (price, stock).

    ``variant_ref`` is ``""`` for a product without variants, so the unique key holds on every
    database (NULLs never conflict).
    """

    __tablename__ = "products"
    __table_args__ = (sa.UniqueConstraint("shop_id", "product_ref", "variant_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    product_ref: Mapped[str] = mapped_column(sa.String(128))
    variant_ref: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")
    title: Mapped[str] = mapped_column(sa.String(300))
    price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3))
    available: Mapped[bool] = mapped_column(default=True)
    inventory: Mapped[int | None] = mapped_column()
    url: Mapped[str | None] = mapped_column(sa.Text)
    image: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Push(Base):
    """The outbox: one row per push to one subscription, and the merchant's push record."""

    __tablename__ = "pushes"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "dedupe_key"),
        # The dispatcher's only scan: due rows by status, time and id, the claim's order (so
        # a claim reads its batch off the index, however many rows are due at the same time).
        sa.Index("ix_pushes_status_due", "status", "due_at", "id"),
        sa.Index("ix_pushes_visitor_created", "visitor_id", "created_at"),
        sa.Index("ix_pushes_shop_created", "shop_id", "created_at"),
        sa.Index("ix_pushes_subscription_sent", "subscription_id", "sent_at"),
        sa.Index("ix_pushes_group", "shop_id", "group_key"),
        # The push records' order (``merchant.records``), read backwards a page at a time.
        sa.Index("ix_pushes_shop_due", "shop_id", "due_at", "id"),
        # The guardrail's sends of the hours before the first whole day in ``stat_days``
        # (``reports.guardrails``): sent rows only, so a planned or claimed row adds no entry.
        sa.Index("ix_pushes_shop_sent", "shop_id", "sent_at", "kind",
                 postgresql_where=sa.text("status = 'sent'"), sqlite_where=sa.text("status = 'sent'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    # Unique per shop: a plan made twice is stored once. ``group_key`` names the plan
    # (e.g. ``checkout:{token}``) so a later event can cancel all its rows.
    dedupe_key: Mapped[str] = mapped_column(sa.String(255))
    group_key: Mapped[str | None] = mapped_column(sa.String(255))
    step: Mapped[int] = mapped_column(default=0)
    visitor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visitors.id", ondelete="SET NULL"))
    subscription_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(sa.String(16), default=PushStatus.PENDING.value)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    http_status: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    # The rendered notification, fixed at plan time (what the merchant's record shows).
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str] = mapped_column(sa.Text)  # the target behind the click link
    icon: Mapped[str | None] = mapped_column(sa.Text)
    image: Mapped[str | None] = mapped_column(sa.Text)
    topic: Mapped[str | None] = mapped_column(sa.String(32))
    ttl: Mapped[int] = mapped_column(default=86400)
    urgency: Mapped[str] = mapped_column(sa.String(8), default="normal")
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first click
    # An A/B test's row: the experiment (``experiments.id``; no foreign key: experiments are
    # never deleted, and the outbox should not pay for one more constraint check per insert)
    # and the variant key (``A``..``D``) whose texts it carries, so results group by variant.
    experiment_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    variant: Mapped[str | None] = mapped_column(sa.String(8))
    # The rendered action buttons [{"title", "url"}] (the url is the target behind ``/c/{token}?a=n``).
    actions: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType, nullable=True, default=None)


class Click(Base):
    __tablename__ = "clicks"
    __table_args__ = (sa.Index("ix_clicks_visitor_clicked", "visitor_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    push_id: Mapped[int] = mapped_column(sa.ForeignKey("pushes.id", ondelete="CASCADE"), index=True)
    visitor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visitors.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Which action button was clicked (1 or 2); None for the notification itself.
    action: Mapped[int | None] = mapped_column(sa.SmallInteger, nullable=True)


class JournalMark(Base):
    """How far a web process's events journal has been stored (``server.collect.journal``): its rows up
    to ``last_id`` are in the database, moved in the same transaction as their events."""

    __tablename__ = "journal_marks"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SweepCursor(Base):
    """Where a sweep that walks a whole table a slice per pass goes on next (``planning.expiry``)."""

    __tablename__ = "sweep_cursors"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    position: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Experiment(Base):
    """An A/B test of a preset kind's texts on a slice of its audience (``server.planning.experiments``).

    ``variants`` is a list of 2 to 4 ``{"key", "title", "body", "url", "image"}`` templates (an
    empty field uses the kind's own); ``status`` is ``running``, ``stopped`` or ``applied`` (the
    winner's texts were copied into the kind's settings).
    """

    __tablename__ = "experiments"
    __table_args__ = (sa.Index("ix_experiments_shop_kind_status", "shop_id", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="running")
    slice_percent: Mapped[int] = mapped_column(default=20)  # of the kind's treated audience
    goal: Mapped[str] = mapped_column(sa.String(16), default="clicks")  # clicks | revenue
    confidence: Mapped[float] = mapped_column(sa.Float, default=0.95)
    min_sends: Mapped[int] = mapped_column(default=200)  # per variant, before a winner is named
    auto_apply: Mapped[bool] = mapped_column(default=False)
    variants: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    winner: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the auto-apply check
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Holdout(Base):
    """A preset kind's holdout: ``percent`` of subscriptions (a hash of shop, kind and
    subscription) get no push of the kind, so its lift can be measured against them."""

    __tablename__ = "holdouts"
    __table_args__ = (sa.UniqueConstraint("shop_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    percent: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Interest(Base):
    """A visitor's "notify me" on a product (or one variant) for one alert kind.

    ``variant_ref`` is ``""`` for the product as a whole (any of its variants). ``seen_price`` is
    the product's price when the interest was registered (or last alerted about), the reference
    a price drop is measured from.
    """

    __tablename__ = "interests"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "visitor_id", "product_ref", "variant_ref", "kind"),
        # The planner's lookup: a product's interests when the product changes.
        sa.Index("ix_interests_shop_product", "shop_id", "product_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(sa.ForeignKey("visitors.id", ondelete="CASCADE"), index=True)
    product_ref: Mapped[str] = mapped_column(sa.String(128))
    variant_ref: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")
    kind: Mapped[str] = mapped_column(sa.String(32))
    seen_price: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignStatus(str, enum.Enum):
    """Where a campaign is: edited, waiting for its time, being planned/sent, done, or stopped."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


class Campaign(Base):
    """A merchant's push to a segment, sent now, at a UTC time, or at a local time per subscriber.

    Its rows in the outbox carry ``group_key = campaign:{id}`` and ``dedupe_key =
    campaign:{id}:{subscription}``. The dispatcher's sweep plans them in batches of
    subscriptions in id order up to ``audience_max_id`` (the newest subscription when the
    send was asked for), moving ``plan_cursor``; ``slots`` holds, per start time, how many rows
    were spread from it, so the rate holds across batches.
    """

    __tablename__ = "campaigns"
    # AUTOINCREMENT on SQLite: an id is never reused after a delete, since the outbox rows of a
    # deleted campaign keep its ``campaign:{id}`` keys (a reused id would inherit its stats and
    # collide with its dedupe keys). PostgreSQL's sequence never reuses one anyway.
    __table_args__ = (sa.Index("ix_campaigns_status_plan_after", "status", "plan_after"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=CampaignStatus.DRAFT.value)
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text, default="")
    url: Mapped[str] = mapped_column(sa.Text, default="")
    icon: Mapped[str] = mapped_column(sa.Text, default="")
    image: Mapped[str] = mapped_column(sa.Text, default="")
    segment: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)  # conditions, ANDed
    send_mode: Mapped[str] = mapped_column(sa.String(8), default="now")  # now | at | local
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # ``at``: when; ``local``: not before
    local_time: Mapped[str | None] = mapped_column(sa.String(5))  # ``local``: HH:MM in each zone
    rate_per_minute: Mapped[int | None] = mapped_column()  # None: as fast as the dispatcher goes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Planning progress, set when the send is asked for.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan_after: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the sweep starts planning then
    audience_max_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    plan_cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    slots: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    targeted: Mapped[int | None] = mapped_column()  # the audience counted when the send was asked for
    planned: Mapped[int] = mapped_column(default=0)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every row planned
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# A campaign's planner reads a shop's subscriptions in id order, a page after the last one it
# planned: this index makes each page a range scan instead of a sort of the whole shop.
sa.Index("ix_subscriptions_shop_id_id", Subscription.shop_id, Subscription.id)


class CouponSource(Base):
    """Where a kind's ``{{ coupon }}`` comes from in one shop: nothing, one fixed code, or a list."""

    __tablename__ = "coupon_sources"
    __table_args__ = (sa.UniqueConstraint("shop_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    mode: Mapped[str] = mapped_column(sa.String(8), default="none")  # none | fixed | list
    code: Mapped[str | None] = mapped_column(sa.String(64))  # the fixed code
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponCode(Base):
    """One merchant-uploaded single-use code; ``assigned_at`` is set when a push takes it."""

    __tablename__ = "coupon_codes"
    __table_args__ = (
        sa.UniqueConstraint("shop_id", "kind", "code"),
        # The claim's scan: a shop's free codes of one kind, oldest first.
        sa.Index("ix_coupon_codes_free", "shop_id", "kind", "assigned_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    code: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subscription_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="SET NULL"))
    push_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pushes.id", ondelete="SET NULL"))


class OnsiteMessage(Base):
    """A message the widget shows in the shop's pages when its rule matches (``server.merchant.onsite_admin``).

    ``rule`` and ``content`` are JSON validated by the merchant service: the rule's page kind,
    visits, dwell, cart bounds, subscribed, exit intent, once per N days; the content's title,
    text, image, coupon source kind, call to action, quick replies or the push opt-in.
    """

    __tablename__ = "onsite_messages"
    __table_args__ = (sa.Index("ix_onsite_messages_shop_status", "shop_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="paused")  # active | paused
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OnsiteImpression(Base):
    """One showing of an on-site message to one visitor, and what the visitor did with it.

    ``token`` is the random handle the widget reports the close, click or reply with; ``code``
    the coupon code it was given (a list code is taken from ``coupon_codes`` as pushes take them).
    """

    __tablename__ = "onsite_impressions"
    __table_args__ = (
        sa.UniqueConstraint("token"),
        sa.Index("ix_onsite_impressions_visitor_shown", "visitor_id", "shown_at"),
        sa.Index("ix_onsite_impressions_message", "message_id", "shown_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("onsite_messages.id", ondelete="CASCADE"))
    # None once the visitor is forgotten (``merchant.privacy``): the showing still counts.
    visitor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("visitors.id", ondelete="SET NULL"))
    token: Mapped[str] = mapped_column(sa.String(32))
    code: Mapped[str | None] = mapped_column(sa.String(64))
    code_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupon_codes.id", ondelete="SET NULL"))
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_tag: Mapped[str | None] = mapped_column(sa.String(64))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An A/B test's showing (``experiments.id`` of kind ``onsite:{message_id}``, no foreign key as
    # on pushes) and the variant key whose texts it showed.
    experiment_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    variant: Mapped[str | None] = mapped_column(sa.String(8))


class VisitorTag(Base):
    """A tag a visitor earned (an on-site quick reply): campaign segments select by it."""

    __tablename__ = "visitor_tags"
    __table_args__ = (
        sa.UniqueConstraint("visitor_id", "tag"),
        sa.Index("ix_visitor_tags_shop_tag", "shop_id", "tag"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(sa.ForeignKey("visitors.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(32), default="onsite")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

class StaffRole(str, enum.Enum):
    """A staff account's role: an owner does everything; a marketer everything but the secrets,
    the platform connection and the team (``server.merchant.doors``' ``owner_only`` children)."""

    OWNER = "owner"
    MARKETER = "marketer"


class User(Base):
    """A staff account of one shop: logs in to the dashboard with its e-mail and password.

    The e-mail is unique over the instance, so a log-in names one account; only an argon2 hash
    of the password is kept.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))  # StaffRole
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DashboardSession(Base):
    """One dashboard log-in, revocable: the cookie holds a random id, the row only its SHA-256.

    ``user_id`` is None for a log-in with the shop's admin token (an owner's rights). Deleting
    the row logs the browser out at its next request.
    """

    __tablename__ = "dashboard_sessions"
    __table_args__ = (sa.Index("ix_dashboard_sessions_shop_user", "shop_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    id_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Invitation(Base):
    """An owner's invitation to join the shop's team: a single-use link whose token is kept hashed."""

    __tablename__ = "invitations"
    __table_args__ = (sa.Index("ix_invitations_shop", "shop_id", "accepted_at", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[str] = mapped_column(sa.String(16))  # StaffRole
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(sa.String(254))  # who sent it, as the audit log names them
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One change of a shop's settings, presets or team: who, when, what, before and after.

    ``actor`` is the user's e-mail, "API token" or "admin token" (a dashboard log-in with it);
    secret values are stored masked (``server.merchant.audit``).
    """

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_shop_at", "shop_id", "at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(254))
    area: Mapped[str] = mapped_column(sa.String(32))  # settings | preset:<kind> | secret | team
    subject: Mapped[str] = mapped_column(sa.String(120))  # the setting's name, or the member's e-mail
    before: Mapped[str | None] = mapped_column(sa.Text)
    after: Mapped[str | None] = mapped_column(sa.Text)



__all__ = [
    "ALERT_KINDS",
    "ALL_KINDS",
    "AuditEntry",
    "RECORD_KINDS",
    "Base",
    "CAMPAIGN_KIND",
    "Campaign",
    "CampaignStatus",
    "Checkout",
    "Click",
    "CouponCode",
    "CouponSource",
    "DashboardSession",
    "Event",
    "Experiment",
    "FunnelDay",
    "Holdout",
    "Interest",
    "Invitation",
    "JournalMark",
    "OnsiteImpression",
    "OnsiteMessage",
    "KINDS",
    "Order",
    "PresetSetting",
    "Product",
    "Push",
    "PushKind",
    "PushStatus",
    "Shipment",
    "Shop",
    "StaffRole",
    "Subscription",
    "SubscriptionStatus",
    "TEST_DEVICE_PREFIX",
    "TRANSACTIONAL_KINDS",
    "User",
    "TestDevice",
    "Visitor",
    "VisitorTag",
    "WebhookReceipt",
]


class StatDay(Base):
    """One shop's figures of one UTC day and push kind, kept by triggers (``server.core.rollups``):
    the Overview sums these rows instead of the pushes, clicks, orders and subscriptions. Kind
    ``''`` holds what has no kind: unattributed orders and the subscription counts."""

    __tablename__ = "stat_days"

    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    sent: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    unique_clicks: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    clicks: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    clicks_a1: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    clicks_a2: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    orders: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    gmv_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    new_subs: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    subs_opened: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    subs_closed: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class VisitorDay(Base):
    """What one visitor did on one UTC day, kept by triggers (``server.core.rollups``): the
    funnel's distinct counts read a range's visitor-days, not its events."""

    __tablename__ = "visitor_days"
    __table_args__ = (sa.Index("ix_visitor_days_shop_day", "shop_id", "day"),)

    visitor_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    first_seen: Mapped[int] = mapped_column(default=0, server_default="0")
    events: Mapped[int] = mapped_column(default=0, server_default="0")
    shopping: Mapped[int] = mapped_column(default=0, server_default="0")  # add_to_cart, checkout_started
    checkouts: Mapped[int] = mapped_column(default=0, server_default="0")  # platform checkouts started
    paid: Mapped[int] = mapped_column(default=0, server_default="0")  # paid orders
    subscribed: Mapped[int] = mapped_column(default=0, server_default="0")  # subscriptions made (not test devices)
    # The gaps this day counts with in ``funnel_days`` (``rollups.GAP_COLUMNS``; NULL: not that stage).
    a_gap: Mapped[int | None] = mapped_column(sa.SmallInteger)
    s_gap: Mapped[int | None] = mapped_column(sa.SmallInteger)
    u_gap: Mapped[int | None] = mapped_column(sa.SmallInteger)
    p_gap: Mapped[int | None] = mapped_column(sa.SmallInteger)
    p_next: Mapped[int | None] = mapped_column(sa.SmallInteger)


class FunnelDay(Base):
    """How many visitor-days of one shop and UTC day reached a funnel stage with a given gap back to
    the visitor's previous day of that stage (and, for buyers, forward to the next paid day), kept
    by triggers on ``visitor_days`` (``server.core.rollups``): a range's funnel sums its days' rows."""

    __tablename__ = "funnel_days"

    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(sa.String(1), primary_key=True)  # rollups.STAGES
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    prev_gap: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    next_gap: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)  # -1 but for buyers
    n: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class VisitorProduct(Base):
    """When a visitor last viewed a product (``product_view``), kept by a trigger on events."""

    __tablename__ = "visitor_products"

    visitor_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True)
    product_ref: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    last_viewed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitorPage(Base):
    """When a visitor last viewed a page (``page_view``, ``product_view``), kept by a trigger on
    events: its URL up to the query or fragment, at most ``rollups.PAGE_CHARS`` characters."""

    __tablename__ = "visitor_pages"
    __table_args__ = (sa.Index("ix_visitor_pages_shop_viewed", "shop_id", "last_viewed_at"),)

    visitor_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True)
    page: Mapped[str] = mapped_column(sa.String(rollups.PAGE_CHARS), primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    last_viewed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitorSummary(Base):
    """A visitor's latest cart event (``add_to_cart``, ``cart_update``, ``checkout_started``),
    kept by a trigger on events: ``carted_not_bought`` reads it, not the events."""

    __tablename__ = "visitor_summaries"

    visitor_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(sa.ForeignKey("shops.id", ondelete="CASCADE"))
    last_carted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@sa.event.listens_for(Base.metadata, "after_create")
def _rollup_triggers(target: sa.MetaData, connection: sa.Connection, **kw: Any) -> None:
    """The rollups' and the streak's triggers, with the tables (``create_all``; migrations create
    them themselves)."""
    rollups.create_triggers(connection)
    streaks.create_triggers(connection)
