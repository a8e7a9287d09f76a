"""What the Shopify and WooCommerce adapters share: the signature check, the body, the result.

A platform delivery is verified over its raw body (base64 of HMAC-SHA256): Shopify's with the
shop's ``platform_secret`` (Shopify's own key), WooCommerce's with the shop's webhook ``secret``
(what the plugin makes its webhooks with) or its ``platform_secret`` when one is set; checked against the shop's ``platform_domain`` when one is set, parsed, and
translated into the native webhook models (``webhooks.native``), which are then applied by
the same functions as the native webhooks. Nothing is stored before every check has passed.

The platforms retry any answer that is not 2xx, so a delivery that is signed but of no use to
Pushcart (a topic it does not act on, a checkout without a recovery link) is answered 200 with
``{"received": true, "ignored": "<why>"}`` and logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from sqlalchemy import orm

from server.core import fields
from server.core.errors import Malformed, Unauthorized
from server.core.validation import parse
from server.core.models import Shop
from server.webhooks import native as webhooks

log = logging.getLogger(__name__)

PLATFORMS = ("custom", "shopify", "woocommerce")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def require_secret(shop: Shop, label: str) -> str:
    """The shop's platform webhook secret; raises Unauthorized when none is set."""
    if not shop.platform_secret:
        raise Unauthorized(f"no {label} webhook secret is set in the shop's settings (platform_secret)",
                           code="no_platform_secret")
    return shop.platform_secret


def verify_base64_hmac(keys: Sequence[str], header_name: str, header: str | None, body: bytes) -> None:
    """Check a base64 HMAC-SHA256 of ``body`` with any of ``keys``, each in constant time; raises
    Unauthorized."""
    if not header or len(header) > 200:
        raise Unauthorized(f"the {header_name} header is missing", code="bad_signature")
    given = header.strip().encode("ascii", "replace")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, base64.b64encode(hmac.new(key.encode("utf-8"), body,
                                                                         hashlib.sha256).digest()))
    if not matched:
        raise Unauthorized("the signature does not match", code="bad_signature")


def parse_object(body: bytes) -> dict[str, Any]:
    """A signed delivery's body as a JSON object (floats as exact decimals); raises Malformed.

    The platforms' bodies hold long texts (product descriptions) the collect API's JSON limits
    would refuse; they are signed, and only the fields Pushcart keeps are validated (lengths
    included) by the native models.
    """
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Malformed(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed("the body must be a JSON object")
    return data


def build(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """A native webhook model from translated fields; raises Invalid (a field the shop sent is unusable)."""
    return parse(model, {k: v for k, v in data.items() if v is not None})


def text(value: Any, limit: int) -> str | None:
    """A platform's text field, HTML entities decoded, trimmed to ``limit``; None when empty."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    result = html.unescape(str(value)).strip()
    return result[:limit] or None


def ref(value: Any) -> str | None:
    """An id (number or string) as the text Pushcart stores; None when absent, empty or 0
    (WooCommerce's "no variation")."""
    return None if value == 0 else fields.ref(value)


def money(value: Any) -> Decimal | None:
    """A price as an exact two-place decimal (``"199.00"``, ``3``, ``12.5``, a computed
    ``33.333333`` rounded to the cent); None when absent or unusable."""
    return fields.rounded_money(value)


def count(value: Any) -> int | None:
    """A whole number (quantities, stock); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# A bad link or address is dropped rather than refusing the delivery (the platform would retry it).
http_url = fields.http_url
email = fields.email


def apply_all(session: orm.Session, shop: Shop, topic: str, webhook_id: str,
              payloads: Sequence[BaseModel], receipt_topic: str, now: datetime) -> dict[str, Any]:
    """Record the delivery once (``receipt_topic``, ``webhook_id``) and apply its payloads."""
    if not webhooks.first_receipt(session, shop, receipt_topic, webhook_id[:128], now):
        log.info("%s %s %s for shop %s already received", receipt_topic, topic, webhook_id, shop.id)
        return {"received": True, "duplicate": True}
    for payload in payloads:
        webhooks.apply(session, shop, payload, now)
    log.info("%s %s %s for shop %s applied (%d change(s))", receipt_topic, topic, webhook_id, shop.id,
             len(payloads))
    return {"received": True, "duplicate": False}


def ignored(platform: str, shop: Shop, topic: str, reason: str) -> dict[str, Any]:
    """The answer to a signed delivery Pushcart does not act on (logged, nothing stored)."""
    log.info("%s %s for shop %s ignored: %s", platform, topic, shop.id, reason)
    return {"received": True, "ignored": reason}


def translate_and_apply(session: orm.Session, shop: Shop, platform: str,
                        translators: Mapping[str, Callable[..., tuple[list[Any], str | None]]], topic: str,
                        webhook_id: str, body: bytes, receipt_topic: str, now: datetime,
                        receipt_id: str | None = None) -> dict[str, Any]:
    """A verified delivery: translate its topic's body into native payloads and apply them once
    (under ``receipt_id``, else ``webhook_id``); a topic or body Pushcart does not use is
    answered ``ignored``. Raises Malformed (not JSON) or Invalid (a field is unusable)."""
    translate = translators.get(topic)
    if translate is None:
        return ignored(platform, shop, topic, f"topic {topic!r} is not used")
    payloads, reason = translate(shop, webhook_id, parse_object(body))
    if reason is not None:
        return ignored(platform, shop, topic, reason)
    return apply_all(session, shop, topic, receipt_id or webhook_id, payloads, receipt_topic, now)


def normalize_site(raw: str) -> str:
    """A WordPress site URL for comparison: lower-case scheme and host, no trailing slash."""
    parts = urlsplit(raw.strip())
    host = (parts.hostname or "").lower()
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def body_digest(body: bytes) -> str:
    """A short SHA-256 of a body, to name a delivery that came without ids."""
    return hashlib.sha256(body).hexdigest()[:40]
