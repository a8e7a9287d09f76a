"""The field rules every edge shares: one rule per kind of value, in a plain and a typed form.

The widget's collect API, the native webhooks, the Shopify and WooCommerce translators, the
planners and the click links used to check the same kinds of value five ways, and the copies
differed. Each rule lives here once:

- the plain form (``http_url``, ``money``, ``currency``, ``ref``, ``email``, ``locale``, ``zone``)
  takes anything and answers the clean value or None: the platforms drop an unusable field
  instead of refusing a delivery the platform would only retry;
- the typed form (``Url``, ``Money``, ``Currency``, ``Ref``, ``Email``, ``Locale``, ``Zone``) is
  the same rule as a pydantic type, refusing with a message: the widget and native webhooks
  answer 400 with the field's name.

``tests/unit/test_fields.py`` pins each rule and checks, with hypothesis, that the two forms
agree on every input.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator

MAX_URL = 2048
MAX_REF = 128
MAX_EMAIL = 320
MONEY_LIMIT = Decimal("1e12")
CENT = Decimal("0.01")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")  # controls, spaces and backslashes (browsers read \ as /)
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$")


def http_url(value: Any) -> str | None:
    """An absolute http(s) URL with a host, no credentials, no spaces or control characters and
    at most ``MAX_URL`` characters (outer whitespace trimmed); None for anything else."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_URL or _URL_FORBIDDEN.search(value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number or out of range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return value


def money(value: Any) -> Decimal | None:
    """An amount as an exact decimal: a number or numeric text, finite, 0 <= amount < 10^12, at
    most two decimal places (``"199.00"``, ``3``, ``12.5``); None for anything else."""
    if value is None or isinstance(value, bool) or isinstance(value, (dict, list)):
        return None
    if isinstance(value, float):
        value = repr(value)  # 12.5, not the binary expansion
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount < 0 or amount >= MONEY_LIMIT:
        return None
    cents = amount.quantize(CENT)
    return cents if cents == amount else None


def rounded_money(value: Any) -> Decimal | None:
    """``money`` for an amount a platform computed (WooCommerce's line price is the subtotal
    divided by the quantity, 33.333333): rounded half-up to the cent first."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return money(amount.quantize(CENT, rounding=ROUND_HALF_UP)) if amount.is_finite() else None


def currency(value: Any) -> str | None:
    """An ISO 4217 code as three capital letters (``usd`` is read as ``USD``); None otherwise."""
    if not isinstance(value, str) or not _CURRENCY.match(value.strip()):
        return None
    return value.strip().upper()


def ref(value: Any) -> str | None:
    """An id (text, or a whole number kept as its text), trimmed, 1 to ``MAX_REF`` characters,
    without control characters; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_REF or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    return value


def email(value: Any) -> str | None:
    """An e-mail address, trimmed and lower-cased: one ``@``, a local part, a dotted domain, no
    spaces, at most ``MAX_EMAIL`` characters; None otherwise."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "@" in domain or "." not in domain.strip(".") or len(value) > MAX_EMAIL:
        return None
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        return None
    return value


def locale(value: Any) -> str | None:
    """A language tag as browsers report it (``en``, ``pt-BR``, ``zh-Hant-TW``); None otherwise."""
    if not isinstance(value, str) or len(value.strip()) > 35 or not _LOCALE.match(value.strip()):
        return None
    return value.strip()


def zone(value: Any) -> str | None:
    """An IANA time zone name this machine's tz database knows (``Europe/Berlin``); None otherwise."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value.strip()


def _typed(rule: Callable[[Any], Any], message: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        clean = rule(value)
        if clean is None:
            raise ValueError(message)
        return clean

    return BeforeValidator(check)


Url = Annotated[str, _typed(http_url, f"must be an absolute http(s) URL of at most {MAX_URL} characters")]
# An optional URL in a form or settings: empty (or blank) is "", anything else a Url.
OptionalUrl = Annotated[str, _typed(lambda v: "" if isinstance(v, str) and not v.strip() else http_url(v),
                                    f"must be empty or an absolute http(s) URL of at most {MAX_URL} characters")]
Money = Annotated[Decimal, _typed(money, "must be an amount from 0 to below 10^12 with at most two decimals")]
Currency = Annotated[str, _typed(currency, "must be a three-letter currency code (ISO 4217)")]
Ref = Annotated[str, _typed(ref, f"must be an id of 1 to {MAX_REF} characters")]
Email = Annotated[str, _typed(email, "must be an email address")]
Locale = Annotated[str, _typed(locale, "must be a language tag such as en or pt-BR")]
Zone = Annotated[str, _typed(zone, "must be a time zone name such as Europe/Berlin")]
# A zone a browser reported: dropped (None) when this machine's tz database does not know it,
# never refused (a subscription matters more than its send-time hint).
ReportedZone = Annotated[str | None, BeforeValidator(zone)]
