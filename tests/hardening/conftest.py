"""Fixtures for the hardening tests: a shop and body builders."""
from __future__ import annotations

import secrets
from typing import Any

import pytest
import sqlalchemy as sa

from tests.factories import browser_keys

ORIGIN = "https://shop.example"


def visitor_key() -> str:
    return "v_" + secrets.token_hex(8)


def sub_body(endpoint: str | None = None, visitor_id: str | None = None) -> dict[str, Any]:
    """A valid subscription body (a fresh endpoint each time unless given)."""
    return {"visitor_id": visitor_id or visitor_key(),
            "subscription": {"endpoint": endpoint or f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(16)}",
                             "expirationTime": None, "keys": browser_keys()}}


def events_body(n: int = 1, visitor_id: str | None = None) -> dict[str, Any]:
    """A valid batch of ``n`` page views with distinct ids."""
    return {"visitor_id": visitor_id or visitor_key(),
            "events": [{"type": "page_view", "id": secrets.token_hex(8), "url": "https://shop.example/p"}
                       for _ in range(n)]}


def count(session, model) -> int:
    """Rows of ``model`` as the database has them now."""
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def assert_json_error(response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with the one JSON error shape (and ``code`` when given)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json, response.headers.get("Content-Type")
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
