"""Signed click tokens: ``/c/{token}`` names one push and cannot be forged or guessed."""
from __future__ import annotations

import base64
import hashlib
import hmac

_TAG_BYTES = 16  # 128-bit tag: forging one is out of reach, and the link stays short


def _tag(secret_key: str, push_id: int) -> str:
    mac = hmac.new(secret_key.encode("utf-8"), f"click:{push_id}".encode("ascii"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:_TAG_BYTES]).rstrip(b"=").decode("ascii")


def make_click_token(secret_key: str, push_id: int) -> str:
    """Return the click token of push ``push_id``."""
    return f"{push_id:x}.{_tag(secret_key, push_id)}"


def read_click_token(secret_key: str, token: str) -> int | None:
    """Return the push id a token names, or None when it is malformed or forged."""
    head, sep, tag = token.partition(".")
    if not sep or not head or len(head) > 16 or len(tag) > 32:
        return None
    try:
        push_id = int(head, 16)
    except ValueError:
        return None
    if push_id <= 0 or not hmac.compare_digest(tag, _tag(secret_key, push_id)):
        return None
    return push_id
