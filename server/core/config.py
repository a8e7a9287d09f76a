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
from typing import Annotated, Any, Literal

from flask import Flask
from limits import parse as parse_limit
from pydantic import (AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model,
                      field_validator)
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

def _names(key: str) -> tuple[str, ...]:
    """The environment names of a setting: ``PUSHCART_<KEY>`` first (it wins), then the plain name."""
    return (key,) if key.startswith("PUSHCART_") else (f"PUSHCART_{key}", key)


def _setting(default: Any, meaning: str, *, shown: str | None = None, **bounds: Any) -> Any:
    """A setting's declaration: its default, what it means (the README's table) and its bounds."""
    return Field(default, description=meaning, json_schema_extra={"shown": shown} if shown else None, **bounds)


Rate = str  # checked by limits' own parser (the validator below)


class Settings(BaseModel):
    """Every setting an operator may set: its type, default, bounds and meaning.

    Each is read from the environment (or ``.env``) as ``PUSHCART_<NAME>`` or under its plain
    name (the names of earlier releases, kept as aliases; the prefixed one wins), from
    ``instance/config.py`` under its plain name, or from a test's configuration. The README's
    configuration tables are generated from this class (``make readme-config`` prints them), and
    a test holds them equal.
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    # --- the service ---
    DATABASE_URL: str | None = _setting(None, "any SQLAlchemy URL; `postgresql+psycopg://...` in production",
                                        shown="`sqlite:///instance/pushcart.db`")
    PUSHCART_SECRET_KEY: str | None = _setting(None, "signs sessions and click links",
                                               shown="generated into `instance/secret_key` (mode 0600)")
    VAPID_PRIVATE_KEY_FILE: str | None = _setting(None, "the VAPID key pair (P-256)", shown="`instance/vapid_private.pem`")
    VAPID_SUBJECT: str | None = _setting(
        None, "the VAPID contact, a `mailto:` or `https:` URL; without one every sending process stops at its start "
        "with one line saying what to set, and `/healthz` is degraded",
        shown="none; an https `PUBLIC_URL` stands in (`make run` sets `mailto:admin@localhost`)")
    PUBLIC_URL: str = _setting("http://127.0.0.1:5000", "the service's own base URL (click links, script tag, worker)")
    PUSH_ENDPOINT_ALLOW: Annotated[tuple[str, ...], NoDecode] = _setting(
        DEFAULT_PUSH_ENDPOINT_ALLOW, "comma-separated host patterns (`*.example.com`) a subscription endpoint may use",
        shown="FCM, Mozilla, Apple, Windows push hosts")
    PUSH_DECLARATIVE_HOSTS: Annotated[tuple[str, ...], NoDecode] = _setting(
        ("*.push.apple.com",), "comma-separated host patterns whose pushes carry the Declarative Web Push form "
        "(`web_push: 8030`, shown by Safari 18.4+ without the service worker)", shown="`*.push.apple.com`")
    PUSHCART_INSECURE_ENDPOINTS: bool = _setting(
        False, "tests only: also allow `http://127.0.0.1:<port>` and `http://localhost:<port>`")
    RUN_SCHEDULER: bool = _setting(False, "whether the web process also runs the dispatcher",
                                   shown="off (`make run` turns it on)")
    RATELIMIT_STORAGE_URI: str = _setting("memory://", "rate-limit counters; `redis://host:6379` with several web processes")
    RATELIMIT_COLLECT_PER_IP: Rate = _setting("300/minute", "collect calls per client address")
    RATELIMIT_COLLECT_PER_SHOP: Rate = _setting("20000/minute", "collect calls per shop")
    RATELIMIT_NEW_SUBSCRIPTIONS: Rate = _setting(
        "200/hour", "new subscriptions per shop and client address (re-posts of a known endpoint never count)")
    RATELIMIT_WEBHOOKS_PER_SHOP: Rate = _setting("3000/minute", "webhook deliveries per shop")
    RATELIMIT_CLICKS_PER_IP: Rate = _setting("120/minute", "click links per client address")
    RATELIMIT_CONNECT_PER_IP: Rate = _setting("10/minute", "connect calls (`POST /v1/connect`, a plugin connecting "
                                                           "itself with a connect value) per client address")
    RATELIMIT_LOGIN_PER_IP: Rate = _setting("20/minute", "dashboard log-in tries (password, admin token, "
                                                       "invitation) per client address")
    RATELIMIT_LOGIN_PER_EMAIL: Rate = _setting("10/hour", "failed dashboard log-ins per e-mail address")
    DASHBOARD_SESSION_HOURS: int = _setting(
        336, "a dashboard log-in lasts this long (or until log-out, \"sign out everywhere\" or the user's removal)",
        ge=1, le=24 * 90)
    RATELIMIT_ENABLED: bool = _setting(True, "`0` switches every limit off: load runs only")
    PROXY_FIX_HOPS: int = _setting(0, "how many proxies in front may set `X-Forwarded-For` / `-Proto`", ge=0, le=10)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = _setting("INFO", "the log level")
    LOG_FORMAT: Literal["text", "json"] = _setting("text", "`json` for one JSON object per line")
    METRICS_TOKEN: str | None = _setting(None, "when set, `/metrics` wants `Authorization: Bearer <token>`",
                                         shown="none")
    SHOP_CACHE_SECONDS: int = _setting(30, "how long a web process keeps a shop's origins, prompt and worker path",
                                       ge=0, le=86400)
    SUBSCRIPTION_IDLE_DAYS: int = _setting(
        60, "a subscription without a visit, a successful delivery or a click for this long expires (`0`: never)",
        ge=0, le=3650)
    EVENT_RETENTION_DAYS: int = _setting(
        180, "raw events older than this are deleted, a slice per sweep; the dashboard's figures and the "
        "segments' summaries keep what they need (`0`: keep events forever)", ge=0, le=3650)
    COLLECT_JOURNAL_DIR: str | None = _setting(
        None, "where each web process keeps its events journal: a local, persistent disk; created mode 0700, and a "
        "folder that cannot be written stops the start", shown="`instance/journal`")
    COLLECT_JOURNAL_SYNC: Literal["normal", "full"] = _setting(
        "normal", "`full` syncs every append to disk before the answer (survives a power cut, not only a crash)")
    COLLECT_JOURNAL_MAX_PENDING: int = _setting(
        200_000, "batches a process may hold undrained (a database outage) before the events API answers 503 `busy`",
        ge=1)
    SHOPIFY_CLIENT_SECRET: str | None = _setting(
        None, "the client secret of the operator's Shopify app (`integrations/shopify`): it signs the app's webhooks "
        "(`POST /v1/integrations/shopify`) and its app proxy; never shown or logged", shown="none (the app routes answer 401)")
    PLATFORM_MAX_CONTENT_LENGTH: int = _setting(1024 * 1024, "the largest Shopify or WooCommerce webhook body, in bytes",
                                                ge=64 * 1024)

    # --- dispatcher tuning (the `worker` options override the first four) ---
    DISPATCH_INTERVAL_SECONDS: float = _setting(2.0, "seconds between dispatcher ticks", gt=0, le=3600)
    DISPATCH_BATCH_SIZE: int = _setting(200, "rows claimed per batch", ge=1, le=5000)
    DISPATCH_LEASE_SECONDS: float = _setting(
        300.0, "how long a claim holds its rows before another worker may take them", ge=0.5)
    PUSH_CONCURRENCY: int = _setting(32, "pushes in flight at once per process", ge=1, le=1024)
    DISPATCH_MAX_ATTEMPTS: int = _setting(5, "tries before a push is `failed`", ge=1, le=50)
    DISPATCH_BACKOFF_SECONDS: float = _setting(
        30.0, "the first retry's delay, doubling per attempt with jitter (½–1×)", ge=0)
    DISPATCH_BACKOFF_CAP_SECONDS: float = _setting(3600.0, "the longest retry delay", ge=0)
    DISPATCH_RECORD_RETRY_SECONDS: float = _setting(
        0.5, "while the database is away, the first pause between tries to write a sent batch's outcomes (doubling "
        "with jitter, never above a tenth of the lease); the worker sends nothing more meanwhile", gt=0)
    DISPATCH_RECORD_RETRY_CAP_SECONDS: float = _setting(15.0, "the longest pause between those tries", gt=0)
    DISPATCH_SWEEPS: bool = _setting(True, "whether this process also runs the planning sweeps (`worker --processes` "
                                           "leaves them to one process)")
    PUSH_CONNECT_TIMEOUT: float = _setting(5.0, "seconds to connect to a push service", gt=0, le=120)
    PUSH_READ_TIMEOUT: float = _setting(
        10.0, "idle seconds waiting for a push service's answer; with the connect timeout it caps an exchange",
        gt=0, le=300)
    PUSH_STORM_WINDOW_SECONDS: float = _setting(
        600.0, "the mass 404/410 guard's window per push service: a storm is judged on the answers of about this long",
        ge=1)
    PUSH_STORM_MIN_ANSWERS: int = _setting(50, "answers a window needs before a push service can be judged", ge=1)
    PUSH_STORM_MIN_SHARE: float = _setting(
        0.2, "a storm: the share of 404/410 answers above this and above the baseline factor times the usual share",
        ge=0, le=1)
    PUSH_STORM_BASELINE_FACTOR: float = _setting(5.0, "how many times its usual share of 404/410 a storm takes", ge=0)
    PUSH_STORM_RETRY_SECONDS: float = _setting(
        1800.0, "how often a push held by a storm is tried again (its TTL still ends it; the subscriber is kept)", ge=1)
    CAMPAIGN_PLAN_BATCH: int = _setting(5000, "campaign rows the sweep plans per campaign per pass", ge=1,
                                        le=1_000_000)

    @field_validator("PUSH_ENDPOINT_ALLOW", "PUSH_DECLARATIVE_HOSTS", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("LOG_LEVEL", "COLLECT_JOURNAL_SYNC", "LOG_FORMAT", mode="before")
    @classmethod
    def _case(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return value.strip().upper() if info.field_name == "LOG_LEVEL" else value.strip().lower()
        return value

    @field_validator("RATELIMIT_COLLECT_PER_IP", "RATELIMIT_COLLECT_PER_SHOP", "RATELIMIT_NEW_SUBSCRIPTIONS",
                     "RATELIMIT_WEBHOOKS_PER_SHOP", "RATELIMIT_CLICKS_PER_IP", "RATELIMIT_CONNECT_PER_IP",
                     "RATELIMIT_LOGIN_PER_IP", "RATELIMIT_LOGIN_PER_EMAIL", mode="after")
    @classmethod
    def _rate(cls, value: str) -> str:
        # A rate limit is read when a request asks for it: one that cannot be read must stop
        # the start, not fail the first request it guards.
        try:
            parse_limit(value)
        except ValueError:
            raise ValueError("must be a rate like 300/minute or 200/hour") from None
        return value


SETTINGS = tuple(Settings.model_fields)


def default(key: str) -> Any:
    """The declared default of setting ``key`` (for code that runs without an app's config)."""
    return Settings.model_fields[key].default


class _Environment(BaseSettings):
    """The settings the environment and ``.env`` set (only those; the rest stay unset)."""

    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8", case_sensitive=True)


Environment = create_model(  # one optional field per setting, read under both names, checked by Settings after
    "Environment",
    __base__=_Environment,
    **{key: (Annotated[Any, NoDecode] | None, Field(default=None, validation_alias=AliasChoices(*_names(key))))
       for key in SETTINGS},
)


def _explain(exc: ValidationError, names: Any) -> ValueError:
    """One line naming the setting (as the operator wrote it) and what it must be."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error.get("loc") else "a setting"
    field = Settings.model_fields.get(key)
    kind = {int: "a whole number", float: "a number", bool: "true or false"}.get(
        next((t for t in (bool, int, float) if field is not None and field.annotation is t), None), "valid")
    got = error.get("input")
    bounds = error.get("ctx") or {}
    if error["type"] in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        limit = {"greater_than_equal": "of at least {ge}", "greater_than": "greater than {gt}",
                 "less_than_equal": "of at most {le}", "less_than": "less than {lt}"}[error["type"]]
        shown = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in bounds.items()}
        wanted = f"{kind} {limit.format(**shown)}"
        got = field.annotation(got) if field is not None and field.annotation in (int, float) else got  # "-5" as -5
    elif error["type"] == "value_error":
        wanted = str(bounds.get("error") or error["msg"]).removeprefix("Value error, ").removeprefix("must be ")
    elif error["type"] == "literal_error":
        wanted = "one of " + bounds.get("expected", "").replace("'", "")
    else:
        wanted = kind
    return ValueError(f"{names(key)} must be {wanted}, got {got!r}")


def read_environment(env_file: Path) -> dict[str, Any]:
    """The settings the environment and ``env_file`` set (the environment wins), as app config
    keys, checked; raises ValueError naming the variable when one cannot be read."""
    raw = Environment(_env_file=env_file if env_file.exists() else None)
    found = {key: getattr(raw, key) for key in raw.model_fields_set}
    try:
        checked = Settings.model_validate(found)
    except ValidationError as exc:
        raise _explain(exc, lambda key: next((n for n in _names(key) if n in os.environ), _names(key)[0])) from None
    return {key: getattr(checked, key) for key in found}


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from every source and make sure ``instance/`` exists."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        Settings().model_dump(),
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(read_environment(Path(app.root_path).parent / ".env"))
    if test_config:
        app.config.update(test_config)
    try:  # instance/config.py and a test's configuration pass the same checks as the environment
        checked = Settings.model_validate({key: app.config[key] for key in SETTINGS})
    except ValidationError as exc:
        raise _explain(exc, lambda key: key) from None
    app.config.update(checked.model_dump())
    app.config["DATABASE_URL"] = _resolve_sqlite_path(
        app.config["DATABASE_URL"] or f"sqlite:///{instance / 'pushcart.db'}", Path(app.root_path).parent)
    app.config["VAPID_PRIVATE_KEY_FILE"] = app.config["VAPID_PRIVATE_KEY_FILE"] or str(instance / "vapid_private.pem")
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")
    # An https PUBLIC_URL is a valid VAPID contact (RFC 8292 §2.1): it stands in for a missing subject.
    if not app.config.get("VAPID_SUBJECT") and app.config["PUBLIC_URL"].startswith("https://"):
        app.config["VAPID_SUBJECT"] = app.config["PUBLIC_URL"]
    app.config["SECRET_KEY"] = (
        app.config.get("SECRET_KEY") or app.config.get("PUSHCART_SECRET_KEY") or _instance_secret(instance)
    )
    app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_URL"].startswith("https://")


def settings_tables() -> str:
    """The README's configuration tables (Markdown), generated from ``Settings``."""
    rows = {"service": [], "tuning": []}
    for key, field in Settings.model_fields.items():
        extra = field.json_schema_extra or {}
        shown = extra.get("shown") if isinstance(extra, dict) else None
        if shown is None:
            default = field.default
            if isinstance(default, bool):
                shown = "on" if default else "off"
            elif isinstance(default, float) and default.is_integer():
                shown = f"`{int(default)}`"
            else:
                shown = f"`{default}`"
        group = "tuning" if key.startswith(("DISPATCH_", "PUSH_CONCURRENCY", "PUSH_CONNECT", "PUSH_READ", "PUSH_STORM",
                                            "CAMPAIGN_")) else "service"
        rows[group].append(f"| `{key}` | {shown} | {field.description} |")
    head = "| setting | default | meaning |\n| --- | --- | --- |\n"
    return head + "\n".join(rows["service"]) + "\n\n**Dispatcher tuning** (the `worker` options override the interval, batch size, lease and concurrency):\n\n" + head + "\n".join(rows["tuning"]) + "\n"


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

