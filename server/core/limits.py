"""Rate limits on the public endpoints (Flask-Limiter), one limiter per app.

The counters live in ``RATELIMIT_STORAGE_URI`` (``memory://`` by default, ``redis://...`` when
several web processes must share them). Limits are read from the app's config at request time,
so an operator (or a test) can change them without code:

| config key | applies to | default |
| --- | --- | --- |
| ``RATELIMIT_COLLECT_PER_IP`` | every collect call from one client address | 300/minute |
| ``RATELIMIT_COLLECT_PER_SHOP`` | every collect call for one shop | 20000/minute |
| ``RATELIMIT_NEW_SUBSCRIPTIONS`` | new subscriptions (an endpoint the shop has not seen) per shop and client address | 200/hour |
| ``RATELIMIT_WEBHOOKS_PER_SHOP`` | webhook deliveries for one shop (native and platform ones alike) | 3000/minute |
| ``RATELIMIT_CLICKS_PER_IP`` | ``GET /c/{token}`` from one client address | 120/minute |
| ``RATELIMIT_CONNECT_PER_IP`` | ``POST /v1/connect`` from one client address (attached in ``server.ops.hardening``) | 10/minute |
| ``RATELIMIT_LOGIN_PER_IP`` | dashboard log-in tries from one client address (``check_login``) | 20/minute |
| ``RATELIMIT_LOGIN_PER_EMAIL`` | failed dashboard log-ins for one e-mail address (``count_failed_login``) | 10/hour |

``RATELIMIT_ENABLED=0`` switches every limit off (load runs only). The client address is
``request.remote_addr``: ``X-Forwarded-For`` counts only through ProxyFix with
``PROXY_FIX_HOPS`` set (see ``server.security``). Addresses are never kept whole: the
counters' keys are a keyed hash of the address.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Sequence

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from limits import parse as parse_limit

from server.core import metrics
from server.core.errors import RateLimited, error_response

EXTENSION = "pushcart.limiter"

NEW_SUBSCRIPTION_SCOPE = "subscribe-new"


def client_ip() -> str:
    """The client's address as the app sees it (after ProxyFix, when configured)."""
    return request.remote_addr or "unknown"


def ip_key() -> str:
    """Rate-limit key for the client address: a keyed hash, so no whole address is stored."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    digest = hmac.new(secret, client_ip().encode("utf-8"), hashlib.sha256).hexdigest()
    return "ip:" + digest[:24]


def shop_key() -> str:
    """Rate-limit key for the shop named by the public key in the path, or (the Shopify app's one
    URL for every shop) by the myshopify domain its delivery or proxy request names."""
    public_key = (request.view_args or {}).get("public_key")
    if public_key is not None:
        return "shop:" + str(public_key)
    domain = request.headers.get("X-Shopify-Shop-Domain") or request.args.get("shop") or ""
    return "shopify:" + domain.strip().lower()[:255]


def _config_limit(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _is_preflight() -> bool:
    return request.method == "OPTIONS"


def _on_breach(limit: RequestLimit) -> Response:
    """Answer a breached limit in the JSON error shape, with ``Retry-After`` in seconds."""
    retry_after = max(1, math.ceil(limit.reset_at - time.time()))
    metrics.inc("rate_limited", {"scope": _scope_of(limit)})
    return error_response(429, "rate_limited", f"too many requests; retry in {retry_after} s",
                          {"Retry-After": str(retry_after)})


def _scope_of(limit: RequestLimit) -> str:
    # The request's arguments are [prefix, key, scope]: the scope names which limit was hit.
    return str(limit.request_args[-1]) if limit.request_args else "unknown"


def get_limiter(app: Flask | None = None) -> Limiter:
    """The app's limiter."""
    return (app or current_app).extensions[EXTENSION]


def init_app(app: Flask, *, collect: Blueprint, webhooks: Sequence[Blueprint], clicks: Blueprint) -> Limiter:
    """Create the app's limiter and attach the limits to the public blueprints."""
    limiter = Limiter(
        key_func=ip_key,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        # O(1) per hit whatever the limit (a moving window keeps every hit of the window:
        # 20,000 entries per shop at the default), and close to a moving window's accuracy.
        strategy="sliding-window-counter",
        on_breach=_on_breach,
        headers_enabled=False,  # Retry-After is set on 429 only, by _on_breach
        key_prefix="pushcart",
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter

    # Limits attach to the blueprint objects, so the order of registration is free.
    apply_collect_limits(limiter, collect)
    for bp in webhooks:  # native, Shopify's and WooCommerce's deliveries share the shop's budget
        limiter.shared_limit(_config_limit("RATELIMIT_WEBHOOKS_PER_SHOP"), scope="webhooks-shop",
                             key_func=shop_key)(bp)
    # Every click writes a row: a script replaying one link must not fill the table.
    limiter.shared_limit(_config_limit("RATELIMIT_CLICKS_PER_IP"), scope="clicks-ip", key_func=ip_key)(clicks)
    return limiter


def apply_collect_limits(limiter: Limiter, bp: Blueprint) -> None:
    """Per client address and per shop on every collect call (new subscriptions have their own
    limit, counted by ``count_new_subscription``)."""
    limiter.shared_limit(_config_limit("RATELIMIT_COLLECT_PER_IP"), scope="collect-ip",
                         key_func=ip_key, exempt_when=_is_preflight)(bp)
    limiter.shared_limit(_config_limit("RATELIMIT_COLLECT_PER_SHOP"), scope="collect-shop",
                         key_func=shop_key, exempt_when=_is_preflight)(bp)


def count_new_subscription(public_key: str) -> None:
    """Count one new subscription (an endpoint the shop has not seen) for this shop and client
    address; raises RateLimited (429 with ``Retry-After``) past ``RATELIMIT_NEW_SUBSCRIPTIONS``.

    The widget re-posts its subscription on every page load: those re-posts of a known
    endpoint are never counted, so visitors sharing one address (an office, a carrier's NAT)
    lose no opt-in to them. The default (200 an hour per shop and address) is far above what
    one address brings a shop in new opt-ins, and still stops a script minting endpoints.
    """
    limiter = get_limiter()
    if not limiter.enabled:
        return
    item = parse_limit(current_app.config["RATELIMIT_NEW_SUBSCRIPTIONS"])
    identifiers = (NEW_SUBSCRIPTION_SCOPE, "shop:" + public_key, ip_key())
    if limiter.limiter.hit(item, *identifiers):
        return
    reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
    retry_after = max(1, math.ceil(reset_at - time.time()))
    metrics.inc("rate_limited", {"scope": NEW_SUBSCRIPTION_SCOPE})
    raise RateLimited(f"too many new subscriptions from this address; retry in {retry_after} s",
                      headers={"Retry-After": str(retry_after)})



LOGIN_IP_SCOPE = "login-ip"
LOGIN_EMAIL_SCOPE = "login-email"


def _keyed(kind: str, value: str) -> str:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return kind + ":" + hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def _refuse(scope: str, item: object, identifiers: tuple[str, ...], what: str) -> None:
    reset_at = get_limiter().limiter.get_window_stats(item, *identifiers).reset_time  # type: ignore[arg-type]
    retry_after = max(1, math.ceil(reset_at - time.time()))
    metrics.inc("rate_limited", {"scope": scope})
    raise RateLimited(f"too many {what}; retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


def check_login(email: str | None) -> None:
    """Count one dashboard log-in try from this client address and check the e-mail's failures;
    raises RateLimited (429 with ``Retry-After``) past ``RATELIMIT_LOGIN_PER_IP`` tries from the
    address, or when the e-mail already had ``RATELIMIT_LOGIN_PER_EMAIL`` failures.

    Every try counts for the address (a password check costs an argon2 hash); only failures
    count for the e-mail (``count_failed_login``), so a guesser cannot lock its owner out for
    long and the owner's own log-ins never use the budget up.
    """
    limiter = get_limiter()
    if not limiter.enabled:
        return
    per_ip = parse_limit(current_app.config["RATELIMIT_LOGIN_PER_IP"])
    ip_ids = (LOGIN_IP_SCOPE, ip_key())
    if not limiter.limiter.hit(per_ip, *ip_ids):
        _refuse(LOGIN_IP_SCOPE, per_ip, ip_ids, "log-in tries from this address")
    if email:
        per_email = parse_limit(current_app.config["RATELIMIT_LOGIN_PER_EMAIL"])
        email_ids = (LOGIN_EMAIL_SCOPE, _keyed("email", email))
        if not limiter.limiter.test(per_email, *email_ids):
            _refuse(LOGIN_EMAIL_SCOPE, per_email, email_ids, "failed log-ins for this e-mail address")


def count_failed_login(email: str) -> None:
    """Count one failed log-in for ``email`` (see ``check_login``)."""
    limiter = get_limiter()
    if limiter.enabled:
        per_email = parse_limit(current_app.config["RATELIMIT_LOGIN_PER_EMAIL"])
        limiter.limiter.hit(per_email, LOGIN_EMAIL_SCOPE, _keyed("email", email))
