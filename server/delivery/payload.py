"""The push payload: the JSON the service worker receives, capped before encryption.

The contract's shape is ``{"push_id", "kind", "title", "body", "icon"?, "image"?, "url", "tag"?,
"actions"?}``; each action is ``{"action": "a1", "title", "url": "<click link>?a=1"}``, its own
click link (the push's token plus which button), so ``/c/{token}`` knows which was clicked.
aes128gcm adds 103 bytes (86-byte header, 16-byte tag, 1 padding delimiter) to the plaintext,
and some browsers refuse bodies over 3 KB (RFC 8030 only promises 4 KB), so the plaintext is
capped at ``MAX_PLAINTEXT_BYTES``: the action buttons go first (the notification still opens
its page), then an icon or image URL that does not fit, and only then are the texts cut, by
UTF-8 bytes, never mid-character. A payload is never sent oversized.

To Apple's push service (``declarative=True``, chosen by the dispatcher from the endpoint's
host) the payload is a Declarative Web Push message as WebKit documents it (Safari 18.4+, the
WHATWG Notifications standard's "declarative push message"): ``{"web_push": 8030,
"notification": {"title", "body", "navigate", "icon"?, "image"?, "tag"?, "actions"?}}``, each
action ``{"action", "title", "navigate"}``. Safari shows it without running the service worker
(so a notification survives the worker being evicted), and ``navigate`` is the click link, so
clicks are still recorded by ``/c/{token}``. Pushcart's ``push_id``, ``kind`` and ``url`` stay
at the top level beside it, so an older Safari (16.4 to 18.3), which hands the message to the
service worker, still shows it through ``sw.js``. The same cap and the same cutting order apply.
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


DECLARATIVE_WEB_PUSH = 8030  # the member's value is fixed: the RFC 8030 number


def build_payload(*, push_id: int, kind: str, title: str, body: str, url: str,
                  icon: str | None = None, image: str | None = None, tag: str | None = None,
                  actions: list[dict[str, str]] | None = None, declarative: bool = False,
                  limit: int = MAX_PLAINTEXT_BYTES) -> bytes:
    """Return the payload as UTF-8 JSON of at most ``limit`` bytes; the declarative form
    (see the module's notes) when ``declarative``.

    Raises ``PayloadTooLarge`` when even empty texts do not fit (the click link is too long).
    """
    payload: dict[str, Any] = {"push_id": push_id, "kind": kind}
    # ``shown`` holds what the notification shows: the payload itself, or its "notification".
    shown: dict[str, Any] = {
        "title": truncate_utf8(title or "", MAX_TITLE_BYTES),
        "body": truncate_utf8(body or "", MAX_BODY_BYTES),
    }
    if declarative:
        shown["navigate"] = url
        payload["web_push"] = DECLARATIVE_WEB_PUSH
        payload["notification"] = shown
    else:
        payload.update(shown)
        shown = payload
    payload["url"] = url
    for key, value in (("icon", icon), ("image", image)):
        if value and len(value.encode("utf-8")) <= MAX_URL_BYTES:
            shown[key] = value
    if tag:
        shown["tag"] = truncate_utf8(tag, 64)
    if actions:
        shown["actions"] = [{"action": a["action"], "title": a["title"], "navigate": a["url"]} if declarative
                            else a for a in actions[:MAX_ACTIONS]]
    encoded = _encode(payload)
    for key in ("actions", "image", "icon"):  # the buttons and pictures go first, the words last
        if len(encoded) <= limit:
            return encoded
        if key in shown:
            del shown[key]
            encoded = _encode(payload)
    for key in ("body", "title"):
        # JSON escapes may make a text longer on the wire than in UTF-8, hence the loop.
        while len(encoded) > limit and shown[key]:
            over = len(encoded) - limit
            current = len(shown[key].encode("utf-8"))
            shown[key] = truncate_utf8(shown[key], max(0, current - over - 1))
            encoded = _encode(payload)
    if len(encoded) > limit:
        raise PayloadTooLarge(f"push {push_id}: payload does not fit in {limit} bytes")
    return encoded
