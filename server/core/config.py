"""Configuration from defaults, ``instance/config.py``, a ``.env`` file and the environment.

Later sources win: defaults < instance/config.py < .env < environment < ``test_config``.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from flask import Flask

log = logging.getLogger(__name__)

DEFAULT_PUSH_ENDPOINT_ALLOW = (
    "fcm.googleapis.com",
    "*.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)

# Names read from the environment (and .env), with their types.
ENV_KEYS: dict[str, type] = {
    "DATABASE_URL": str,
    "PUSHCART_SECRET_KEY": str,
    "VAPID_PRIVATE_KEY_FILE": str,
    "VAPID_SUBJECT": str,
    "PUBLIC_URL": str,
    "PUSH_ENDPOINT_ALLOW": list,
    "PUSHCART_INSECURE_ENDPOINTS": bool,
    "RUN_SCHEDULER": bool,
    "RATELIMIT_STORAGE_URI": str,
    "PROXY_FIX_HOPS": int,
    "LOG_LEVEL": str,
    "LOG_FORMAT": str,
    "RATELIMIT_ENABLED": bool,
    "RATELIMIT_COLLECT_PER_IP": str,
    "RATELIMIT_COLLECT_PER_SHOP": str,
    "RATELIMIT_NEW_SUBSCRIPTIONS": str,
    "RATELIMIT_WEBHOOKS_PER_SHOP": str,
    "RATELIMIT_CLICKS_PER_IP": str,
    "METRICS_TOKEN": str,
    "SHOP_CACHE_SECONDS": int,
    "SUBSCRIPTION_IDLE_DAYS": int,
    "COLLECT_JOURNAL_DIR": str,
    "COLLECT_JOURNAL_SYNC": str,
    "COLLECT_JOURNAL_MAX_PENDING": int,
}


def _coerce(kind: type, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is list:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from every source and make sure ``instance/`` exists."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        DATABASE_URL=f"sqlite:///{instance / 'pushcart.db'}",
        VAPID_PRIVATE_KEY_FILE=str(instance / "vapid_private.pem"),
        VAPID_SUBJECT=None,
        PUBLIC_URL="http://127.0.0.1:5000",
        PUSH_ENDPOINT_ALLOW=DEFAULT_PUSH_ENDPOINT_ALLOW,
        PUSHCART_INSECURE_ENDPOINTS=False,
        RUN_SCHEDULER=False,
        RATELIMIT_STORAGE_URI="memory://",
        PROXY_FIX_HOPS=0,
        LOG_LEVEL="INFO",
        LOG_FORMAT="text",
        RATELIMIT_ENABLED=True,
        RATELIMIT_COLLECT_PER_IP="300/minute",
        RATELIMIT_COLLECT_PER_SHOP="20000/minute",
        RATELIMIT_NEW_SUBSCRIPTIONS="200/hour",  # per shop and client address; re-posts never count
        RATELIMIT_WEBHOOKS_PER_SHOP="3000/minute",
        RATELIMIT_CLICKS_PER_IP="120/minute",
        METRICS_TOKEN=None,
        SHOP_CACHE_SECONDS=30,
        SUBSCRIPTION_IDLE_DAYS=60,  # not seen, delivered to nor clicked for this long: expired (0: never)
        COLLECT_JOURNAL_DIR=None,  # None: instance/journal
        COLLECT_JOURNAL_SYNC="normal",
        COLLECT_JOURNAL_MAX_PENDING=200_000,
        MAX_CONTENT_LENGTH=64 * 1024,
        PLATFORM_MAX_CONTENT_LENGTH=1024 * 1024,  # Shopify's and WooCommerce's webhook bodies
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.config.from_pyfile("config.py", silent=True)
    file_values = {k: v for k, v in dotenv_values(Path(app.root_path).parent / ".env").items() if v is not None}
    for source in (file_values, os.environ):
        for key, kind in ENV_KEYS.items():
            if key in source:
                try:
                    app.config[key] = _coerce(kind, source[key])
                except ValueError:
                    raise ValueError(f"{key} must be a whole number, got {source[key]!r}") from None
    if test_config:
        app.config.update(test_config)
    app.config["DATABASE_URL"] = _resolve_sqlite_path(app.config["DATABASE_URL"], Path(app.root_path).parent)
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")
    # An https PUBLIC_URL is a valid VAPID contact (RFC 8292 §2.1): it stands in for a missing subject.
    if not app.config.get("VAPID_SUBJECT") and app.config["PUBLIC_URL"].startswith("https://"):
        app.config["VAPID_SUBJECT"] = app.config["PUBLIC_URL"]
    app.config["SECRET_KEY"] = (
        app.config.get("SECRET_KEY") or app.config.get("PUSHCART_SECRET_KEY") or _instance_secret(instance)
    )
    app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_URL"].startswith("https://")
    for key, lowest in (("SHOP_CACHE_SECONDS", 0), ("SUBSCRIPTION_IDLE_DAYS", 0), ("COLLECT_JOURNAL_MAX_PENDING", 1)):
        value = app.config[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < lowest):
            raise ValueError(f"{key} must be a whole number of at least {lowest}, got {value!r}")
    for key, allowed in (("COLLECT_JOURNAL_SYNC", ("normal", "full")),):
        value = str(app.config[key]).strip().lower()
        if value not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {app.config[key]!r}")
        app.config[key] = value


def _resolve_sqlite_path(url: str, base: Path) -> str:
    """Make a relative ``sqlite:///path`` absolute against the project root."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix):])
    return url


def _instance_secret(instance: Path) -> str:
    """Read the generated secret key under ``instance/``, creating it (mode 0600) if absent."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        log.info("generated a secret key in the instance folder")
    return path.read_text().strip()
