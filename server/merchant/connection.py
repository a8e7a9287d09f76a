"""The connection check: is the shop wired up, and if not, what exactly to do.

It reads what the service saw (origins the collect API refused, the last event, the last
webhook delivery accepted and refused per source) and, when asked, fetches the shop's worker
file with the Install page's check (``install_check``). Each problem comes with the fix in
plain words. ``allow_origin`` is the one-click fix for a refused origin.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import RefusedOrigin, Shop, Visitor, WebhookStatus
from server.core.shops import normalize_origin
from server.merchant.install_check import CheckResult

PLATFORM_LABELS = {"native": "native", "shopify": "Shopify", "woocommerce": "WooCommerce"}
MAX_WORKER_CHECKS = 3  # origins whose worker file one check fetches (each waits up to 6 s)

_WEBHOOK_FIXES = {
    ("woocommerce", "bad_signature"): "set each WooCommerce webhook's Secret to the shop's webhook secret "
                                      "(dashboard → Install → Connection); the plugin's button does it for you "
                                      "once its settings hold that secret",
    ("shopify", "bad_signature"): "copy the key Shopify shows under its webhooks (\"Your webhooks will be signed "
                                  "with …\") into Settings → Platform webhook secret",
    ("native", "bad_signature"): "sign with the shop's webhook secret (dashboard → Install → Connection), "
                                 "as t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">",
    ("native", "stale_signature"): "the sending server's clock is more than 5 minutes off: set it by NTP",
    ("shopify", "no_platform_secret"): "copy the key Shopify shows under its webhooks into "
                                       "Settings → Platform webhook secret",
    ("shopify", "wrong_shop_domain"): "set Settings → Shop domain to the shop's ….myshopify.com domain",
    ("woocommerce", "wrong_shop_domain"): "set Settings → Shop domain to the site's address as WordPress knows it "
                                          "(WordPress → Settings → General → Site Address)",
}


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the shop from working, and what to do about it."""

    code: str
    message: str
    fix: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def refused_origins(session: orm.Session, shop_id: int) -> list[RefusedOrigin]:
    """The origins refused for the shop, most recent first (at most the few kept)."""
    return list(session.scalars(sa.select(RefusedOrigin).where(RefusedOrigin.shop_id == shop_id)
                                .order_by(RefusedOrigin.last_seen_at.desc(), RefusedOrigin.id.desc())))


def allow_origin(session: orm.Session, shop: Shop, origin: str) -> str:
    """Add ``origin`` to the shop's origins and forget its refusals; return it normalized.
    Raises Invalid (not an http(s) origin)."""
    normalized = normalize_origin(origin)
    if normalized not in shop.origins:
        shop.origins = sorted({*shop.origins, normalized})
    session.execute(sa.delete(RefusedOrigin).where(RefusedOrigin.shop_id == shop.id,
                                                   RefusedOrigin.origin == normalized))
    return normalized


def _webhooks(session: orm.Session, shop_id: int) -> dict[str, WebhookStatus]:
    rows = session.scalars(sa.select(WebhookStatus).where(WebhookStatus.shop_id == shop_id))
    return {row.source: row for row in rows}


def check(session: orm.Session, shop: Shop, now: datetime,
          worker_check: Callable[[str], CheckResult] | None = None) -> dict[str, Any]:
    """The connection check's answer (``GET /v1/admin/connection``); ``worker_check`` fetches
    one origin's worker file (None: not checked)."""
    problems: list[Problem] = []
    refused = refused_origins(session, shop.id)
    for row in refused:
        problems.append(Problem(
            "origin_refused",
            f"The widget was refused {row.count} time(s) on {row.origin} (last at {row.last_seen_at:%Y-%m-%d %H:%M} "
            "UTC): it is not one of your shop's origins, so browsers show a CORS error and nothing is recorded.",
            f"If {row.origin} is your shop, allow it: the \"Allow this origin\" button on the dashboard "
            "(Install or Connection), or add it under Settings → Shop origins."))
    workers = []
    if worker_check is not None:
        for origin in list(shop.origins)[:MAX_WORKER_CHECKS]:
            result = worker_check(origin)
            workers.append({"origin": origin, **asdict(result)})
            if not result.ok:
                problems.append(Problem(
                    "worker_unreachable", f"The service worker file at {result.url}: {result.message}.",
                    f"Serve the one-line file of Install → 2 at {shop.sw_path} on {origin}, as JavaScript "
                    "(the WordPress plugin does it; on Shopify use the app proxy of Install → Shopify)."))
    last_event = session.scalar(sa.select(sa.func.max(Visitor.last_event_at)).where(Visitor.shop_id == shop.id))
    if last_event is None:
        problems.append(Problem("no_events", "No event from the widget has arrived yet.",
                                "Add the script tag of Install → 1 to every page of your shop, then open one of "
                                "its pages in a browser."))
    seen = _webhooks(session, shop.id)
    sources = ["native"] + ([shop.platform] if shop.platform in ("shopify", "woocommerce") else [])
    webhooks = {}
    for source in sources:
        row = seen.get(source)
        label = PLATFORM_LABELS[source]
        webhooks[source] = {
            "last_delivery_at": _iso(row.last_delivery_at if row else None),
            "last_failure_at": _iso(row.last_failure_at if row else None),
            "last_failure_code": row.last_failure_code if row else None,
            "last_failure": row.last_failure if row else None,
        }
        if row is not None and row.last_failure_at is not None and (
                row.last_delivery_at is None or row.last_failure_at > row.last_delivery_at):
            fix = _WEBHOOK_FIXES.get((source, row.last_failure_code or ""),
                                     f"correct what the refusal names: {row.last_failure}")
            problems.append(Problem(
                "webhook_refused",
                f"The last {label} webhook delivery (at {row.last_failure_at:%Y-%m-%d %H:%M} UTC) was refused: "
                f"{row.last_failure} ({row.last_failure_code}).", fix[0].upper() + fix[1:] + "."))
        elif source != "native" and (row is None or row.last_delivery_at is None):
            problems.append(Problem(
                "no_webhook_delivery", f"No {label} webhook delivery has arrived yet.",
                f"Create the {label} webhooks as Install → {label} says (the WordPress plugin's button makes "
                "them), then place a test order."))
    return {
        "ok": not problems,
        "checked_at": now.isoformat(),
        "origins": list(shop.origins),
        "refused_origins": [{"origin": r.origin, "count": r.count, "first_seen_at": _iso(r.first_seen_at),
                             "last_seen_at": _iso(r.last_seen_at)} for r in refused],
        "worker": workers,
        "last_event_at": _iso(last_event),
        "webhooks": webhooks,
        "problems": [asdict(p) for p in problems],
    }
