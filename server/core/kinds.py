"""The registry of push kinds: one entry per kind, read by the models, planners, policy,
dashboard and stats.

A new kind is one entry here plus its default texts (``server/planning/defaults.py``, for a
kind with preset settings); ``tests/unit/test_kinds.py`` holds the two together.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """What Pushcart knows of one kind of push."""

    name: str
    label: str  # what the merchant reads
    ttl: int  # seconds a push service may hold it for an offline browser
    urgency: str  # RFC 8030 Urgency; "high" for what the visitor expects at once (mobile browsers delay "normal")
    marketing: bool  # marketing pushes obey the frequency cap and quiet hours; transactional ones do not
    preset: bool  # has per-shop preset settings (a switch, delays, texts)
    alert: bool = False  # planned from a visitor's "notify me" interest
    counted: bool = True  # in the stats, the kinds' lists and filters; False only for ``test``


REGISTRY: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("welcome", "Welcome", 86400, "high", marketing=True, preset=True),
    Kind("browse_abandonment", "Browse & cart abandonment", 86400, "normal", marketing=True, preset=True),
    Kind("checkout_recovery", "Checkout recovery", 12 * 3600, "normal", marketing=True, preset=True),
    Kind("repurchase", "Repurchase", 2 * 86400, "normal", marketing=True, preset=True),
    Kind("shipped", "Shipped", 2 * 86400, "high", marketing=False, preset=True),
    # An alert is news for a day or so: stock sells out and prices change again.
    Kind("back_in_stock", "Back in stock", 86400, "normal", marketing=True, preset=True, alert=True),
    Kind("price_drop", "Price drop", 86400, "normal", marketing=True, preset=True, alert=True),
    # A merchant's one-off push to a segment: marketing, without preset settings.
    Kind("campaign", "Campaign", 86400, "normal", marketing=True, preset=False),
    # What the merchant sends to their own test devices from the dashboard: at once, never held
    # by a cap or quiet hours, never in the stats.
    Kind("test", "Test push", 3600, "high", marketing=False, preset=False, counted=False),
)}

PRESET_KINDS: tuple[str, ...] = tuple(k.name for k in REGISTRY.values() if k.preset)
ALERT_KINDS: tuple[str, ...] = tuple(k.name for k in REGISTRY.values() if k.alert)
ALL_KINDS: tuple[str, ...] = tuple(k.name for k in REGISTRY.values() if k.counted)
TEST_KIND = "test"
RECORD_KINDS: tuple[str, ...] = tuple(REGISTRY)  # what a push row may be: the counted kinds and ``test``
TRANSACTIONAL_KINDS: frozenset[str] = frozenset(k.name for k in REGISTRY.values() if not k.marketing and k.counted)
KIND_LABELS: dict[str, str] = {k.name: k.label for k in REGISTRY.values()}
