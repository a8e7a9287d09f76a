"""Plain factory functions with keyword overrides, for building test data in a session."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import orm

from server.core.models import TEST_DEVICE_PREFIX, Push, Subscription, TestDevice, Visitor
from server.merchant.shop_admin import NewShop, create_shop


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_shop(session: orm.Session, now: datetime, *, name: str = "Test Shop",
              origins: list[str] | None = None) -> NewShop:
    """A shop with default presets; returns the shop and its one-time secrets."""
    return create_shop(session, name, origins or ["https://shop.example"], now)


def make_visitor(session: orm.Session, shop_id: int, now: datetime, **overrides: Any) -> Visitor:
    visitor = Visitor(shop_id=shop_id, visitor_key=overrides.pop("visitor_key", secrets.token_hex(8)),
                      first_seen_at=now, last_event_at=now, **overrides)
    session.add(visitor)
    session.flush()
    return visitor


def browser_keys() -> dict[str, str]:
    """A valid (p256dh, auth) pair as a browser would make it."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}


def make_subscription(session: orm.Session, visitor: Visitor, now: datetime, **overrides: Any) -> Subscription:
    endpoint = overrides.pop("endpoint", f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(24)}")
    keys = overrides.pop("keys", None) or browser_keys()
    sub = Subscription(shop_id=visitor.shop_id, visitor_id=visitor.id, endpoint=endpoint,
                       endpoint_hash=hashlib.sha256(endpoint.encode()).hexdigest(),
                       p256dh=keys["p256dh"], auth=keys["auth"], created_at=now, last_seen_at=now,
                       **overrides)
    session.add(sub)
    session.flush()
    return sub


def make_push(session: orm.Session, subscription: Subscription, now: datetime, **overrides: Any) -> Push:
    """A pending outbox row for ``subscription``, due at ``now`` unless overridden."""
    push = Push(shop_id=subscription.shop_id, visitor_id=subscription.visitor_id,
                subscription_id=subscription.id, kind=overrides.pop("kind", "welcome"),
                dedupe_key=overrides.pop("dedupe_key", f"test:{secrets.token_hex(8)}"),
                title=overrides.pop("title", "Hello"), body=overrides.pop("body", "Welcome aboard"),
                url=overrides.pop("url", "https://shop.example/"), due_at=overrides.pop("due_at", now),
                created_at=now, **overrides)
    session.add(push)
    session.flush()
    return push


def cli_env(app: Any, **extra: str) -> dict[str, str]:
    """The environment for a ``flask --app wsgi ...`` subprocess on the test app's database and keys."""
    return {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "VAPID_PRIVATE_KEY_FILE": app.config["VAPID_PRIVATE_KEY_FILE"],
        "VAPID_SUBJECT": app.config["VAPID_SUBJECT"],
        "PUSHCART_SECRET_KEY": app.config["SECRET_KEY"],
        "PUBLIC_URL": app.config["PUBLIC_URL"],
        "PUSHCART_INSECURE_ENDPOINTS": "1",
        "RUN_SCHEDULER": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def make_test_device(session: orm.Session, shop_id: int, now: datetime, name: str = "My phone",
                     **subscription: Any) -> TestDevice:
    """A test device as the dashboard stores one: its own visitor, a ``test`` subscription, the row."""
    visitor = make_visitor(session, shop_id, now, visitor_key=TEST_DEVICE_PREFIX + secrets.token_hex(12))
    sub = make_subscription(session, visitor, now, status="test", **subscription)
    device = TestDevice(shop_id=shop_id, subscription_id=sub.id, name=name, created_at=now)
    session.add(device)
    session.flush()
    return device


def dispatch(app: Any, at: datetime) -> dict[str, int]:
    """``dispatch --once --at AT`` through the app's CLI (in this process: fast, the same code
    path); its counts."""
    stamp = at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    with app.app_context():  # the command is a plain click command: `flask` pushes this context itself
        result = app.test_cli_runner().invoke(args=["dispatch", "--once", "--at", stamp])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])
