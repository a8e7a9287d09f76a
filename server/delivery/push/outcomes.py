"""What a push service's answer means: ``SendResult`` (sent, gone, retry, failed, held).

DESIGN.md, "responses are facts": 2xx sent; 404/410 the subscription is gone; 413 never resent;
429 and 5xx retried (``Retry-After`` honoured); 3xx never followed; 400/401/403 our fault.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass


SENT, GONE, RETRY, FAILED, HELD = "sent", "gone", "retry", "failed", "held"


MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the push service said. ``outcome`` is sent, gone, retry, failed or held.

    ``held`` means not sent at all: the origin asked us to wait (429) earlier in this batch.
    ``retry_after`` is in seconds when the push service gave one.
    """

    outcome: str
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall_now)


def classify(status: int, retry_after: str | None, body: bytes, wall_now: float) -> SendResult:
    """Turn a push service's answer into a ``SendResult`` (DESIGN.md: responses are facts).

    The body is decoded only for the answers whose error quotes it (not on the 2xx hot path).
    """
    if 200 <= status < 300:
        return SendResult(SENT, status)
    snippet = " ".join(body[:1024].decode("utf-8", "replace").split())[:200]
    if status in (404, 410):
        return SendResult(GONE, status, "subscription gone")
    if status == 413:
        return SendResult(FAILED, status, "payload too large")
    if status == 429:
        return SendResult(RETRY, status, "rate limited", parse_retry_after(retry_after, wall_now))
    if status >= 500:
        return SendResult(RETRY, status, f"push service error {status}")
    if 300 <= status < 400:
        return SendResult(FAILED, status, f"redirect {status} not followed")
    if status in (400, 401, 403):
        # Our fault (VAPID key or signature, encryption, headers): the subscription stays.
        return SendResult(FAILED, status, f"rejected ({status}), check VAPID and encryption: {snippet}"[:MAX_ERROR_CHARS])
    return SendResult(FAILED, status, f"unexpected status {status}: {snippet}"[:MAX_ERROR_CHARS])
