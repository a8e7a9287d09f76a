"""Configuration from defaults, ``instance/config.py``, a ``.env`` file and the environment.

Later sources win: defaults < instance/config.py < .env < environment < ``test_config``. The
environment and ``.env`` are read by pydantic-settings: each setting as ``PUSHCART_<NAME>`` or
under its plain name (``DATABASE_URL``), typed and checked at start.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from flask import Flask
from limits import parse as parse_limit
from pydantic import AliasChoices, Field, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

DEFAULT_PUSH_ENDPOINT_ALLOW = (
    "fcm.googleapis.com",
    "*.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)

# Settings an operator sets in the environment (or a ``.env`` file): the app config key and its
# type. Each is read as ``PUSHCART_<KEY>``, and also under its plain name (the names of earlier
# releases, kept as aliases); the prefixed name wins when both are set.
ENV_SETTINGS: dict[str, Any] = {
    "DATABASE_URL": str,
    "PUSHCART_SECRET_KEY": str,
    "VAPID_PRIVATE_KEY_FILE": str,
    "VAPID_SUBJECT": str,
    "PUBLIC_URL": str,
    "PUSH_ENDPOINT_ALLOW": Annotated[tuple[str, ...], NoDecode],
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
    "PUSH_STORM_WINDOW_SECONDS": float,
    "PUSH_STORM_MIN_ANSWERS": int,
    "PUSH_STORM_MIN_SHARE": float,
    "PUSH_STORM_BASELINE_FACTOR": float,
    "PUSH_STORM_RETRY_SECONDS": float,
}


RATE_LIMITS = ("RATELIMIT_COLLECT_PER_IP", "RATELIMIT_COLLECT_PER_SHOP", "RATELIMIT_NEW_SUBSCRIPTIONS",
               "RATELIMIT_WEBHOOKS_PER_SHOP", "RATELIMIT_CLICKS_PER_IP")


def _env_names(key: str) -> tuple[str, ...]:
    return (key,) if key.startswith("PUSHCART_") else (f"PUSHCART_{key}", key)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


EnvSettings = create_model(  # one optional field per setting; only those set are applied
    "EnvSettings",
    __base__=BaseSettings,
    __validators__={"split_lists": field_validator("PUSH_ENDPOINT_ALLOW", mode="before")(_comma_list)},
    **{key: (kind | None, Field(default=None, validation_alias=AliasChoices(*_env_names(key))))
       for key, kind in ENV_SETTINGS.items()},
)
EnvSettings.model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8", case_sensitive=True)


def read_environment(env_file: Path) -> dict[str, Any]:
    """The settings the environment and ``env_file`` set (the environment wins), as app config
    keys; raises ValueError naming the variable when one cannot be read."""
    try:
        settings = EnvSettings(_env_file=env_file if env_file.exists() else None)
    except ValidationError as exc:
        error = exc.errors()[0]
        alias = str(error["loc"][0]) if error.get("loc") else ""
        key = next((k for k in ENV_SETTINGS if alias in _env_names(k)), alias)
        name = next((n for n in _env_names(key) if n in os.environ), alias)  # the name the operator set
        wanted = {int: "a whole number", bool: "true or false", float: "a number"}.get(ENV_SETTINGS.get(key), "valid")
        raise ValueError(f"{name} must be {wanted}, got {error.get('input')!r}") from None
    return {key: getattr(settings, key) for key in settings.model_fields_set}


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
    app.config.update(read_environment(Path(app.root_path).parent / ".env"))
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
    # The mass 404/410 guard (``server.delivery.storm``): its defaults live there.
    for key, lowest, highest in (("PUSH_STORM_WINDOW_SECONDS", 1, None), ("PUSH_STORM_MIN_ANSWERS", 1, None),
                                 ("PUSH_STORM_MIN_SHARE", 0, 1), ("PUSH_STORM_BASELINE_FACTOR", 0, None),
                                 ("PUSH_STORM_RETRY_SECONDS", 1, None)):
        value = app.config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < lowest
                                  or highest is not None and value > highest):
            span = f"from {lowest} to {highest}" if highest is not None else f"of at least {lowest}"
            raise ValueError(f"{key} must be a number {span}, got {value!r}")
    for key, allowed in (("COLLECT_JOURNAL_SYNC", ("normal", "full")),):
        value = str(app.config[key]).strip().lower()
        if value not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {app.config[key]!r}")
        app.config[key] = value
    # A rate limit is read when a request asks for it: one that cannot be read must stop the
    # start, not fail the first request it guards.
    for key in RATE_LIMITS:
        try:
            parse_limit(str(app.config[key]))
        except ValueError:
            raise ValueError(f"{key} must be a rate like 300/minute or 200/hour, got {app.config[key]!r}") from None


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
