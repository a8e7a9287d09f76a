"""The push payload: the JSON the service worker receives, capped before encryption.

The contract's shape is ``{"push_id", "kind", "title", "body", "icon"?, "image"?, "url", "tag"?,
"actions"?}``; each action is ``{"action": "a1", "title", "url": "<click link>?a=1"}``, its own
click link (the push's token plus which button), so ``/c/{token}`` knows which was clicked.
aes128gcm adds 103 bytes (86-byte header, 16-byte tag, 1 padding delimiter) to the plaintext,
and some browsers refuse bodies over 3 KB (RFC 8030 only promises 4 KB), so the plaintext is
capped at ``MAX_PLAINTEXT_BYTES``: the action buttons go first (the notification still opens
its page), then an icon or image URL that does not fit, and only then are the texts cut, by
UTF-8 bytes, never mid-character. A payload is never sent oversized.
"""
from __future__ import annotations

import json
from typing import Any

ENCRYPTION_OVERHEAD = 103
MAX_ENCRYPTED_BYTES = 3000
MAX_PLAINTEXT_BYTES = MAX_ENCRYPTED_BYTES - ENCRYPTION_OVERHEAD
# What notification UIs show anyway; longer texts are cut even when the whole would fit.
MAX_TITLE_BYTES = 200
MAX_BODY_BYTES = 1000
MAX_URL_BYTES = 1000
ELLIPSIS = "…"


class PayloadTooLarge(ValueError):
    """The required fields alone do not fit (never expected with a sane click link)."""


def truncate_utf8(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, ending with an ellipsis when cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode("utf-8"))
    if room <= 0:
        return ""
    # errors="ignore" drops a multi-byte character cut in half.
    return raw[:room].decode("utf-8", errors="ignore").rstrip() + ELLIPSIS


# One encoder, made once: ``json.dumps`` with options builds a new ``JSONEncoder`` per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encode(payload: dict[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode("utf-8")


MAX_ACTIONS = 2
MAX_ACTION_TITLE_BYTES = 120


def action_links(click_url: str, actions: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """The payload's ``actions`` for a push's stored buttons: ``a1``, ``a2``, each linking to
    ``{click_url}?a={n}`` (the target stays on the server, behind the click link)."""
    links = []
    for number, action in enumerate((actions or [])[:MAX_ACTIONS], start=1):
        title = action.get("title") if isinstance(action, dict) else None
        if isinstance(title, str) and title:
            links.append({"action": f"a{number}", "title": truncate_utf8(title, MAX_ACTION_TITLE_BYTES),
                          "url": f"{click_url}?a={number}"})
    return links


def build_payload(*, push_id: int, kind: str, title: str, body: str, url: str,
                  icon: str | None = None, image: str | None = None, tag: str | None = None,
                  actions: list[dict[str, str]] | None = None,
                  limit: int = MAX_PLAINTEXT_BYTES) -> bytes:
    """Return the payload as UTF-8 JSON of at most ``limit`` bytes.

    Raises ``PayloadTooLarge`` when even empty texts do not fit (the click link is too long).
    """
    payload: dict[str, Any] = {
        "push_id": push_id,
        "kind": kind,
        "title": truncate_utf8(title or "", MAX_TITLE_BYTES),
        "body": truncate_utf8(body or "", MAX_BODY_BYTES),
        "url": url,
    }
    for key, value in (("icon", icon), ("image", image)):
        if value and len(value.encode("utf-8")) <= MAX_URL_BYTES:
            payload[key] = value
    if tag:
        payload["tag"] = truncate_utf8(tag, 64)
    if actions:
        payload["actions"] = list(actions[:MAX_ACTIONS])
    encoded = _encode(payload)
    for key in ("actions", "image", "icon"):  # the buttons and pictures go first, the words last
        if len(encoded) <= limit:
            return encoded
        if key in payload:
            del payload[key]
            encoded = _encode(payload)
    for key in ("body", "title"):
        # JSON escapes may make a text longer on the wire than in UTF-8, hence the loop.
        while len(encoded) > limit and payload[key]:
            over = len(encoded) - limit
            current = len(payload[key].encode("utf-8"))
            payload[key] = truncate_utf8(payload[key], max(0, current - over - 1))
            encoded = _encode(payload)
    if len(encoded) > limit:
        raise PayloadTooLarge(f"push {push_id}: payload does not fit in {limit} bytes")
    return encoded
