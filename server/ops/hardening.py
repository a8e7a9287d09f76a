"""Wires the operations and hardening pieces into an app (called once by ``create_app``).

Order matters for the request hooks: the request id and timer first, then the rate limits
(before any blueprint's own hooks, so a refused request costs no database work).
"""
from __future__ import annotations

from flask import Flask

from server.core import limits, metrics
from server.ops import logs, security


def init_app(app: Flask) -> None:
    """Logs, metrics, security headers and ProxyFix, rate limits, ops and privacy endpoints."""
    logs.init_app(app)
    metrics.init_app(app)
    security.init_app(app)
    from server.clicks import api as clicks
    from server.collect import api as collect, interests_api, onsite_api
    from server.webhooks import api as webhooks, platforms_api

    limiter = limits.init_app(app, collect=collect.bp, webhooks=(webhooks.bp, platforms_api.bp), clicks=clicks.bp)
    # The widget's "notify me" is a collect call: it shares the collect budgets (same scopes).
    limits.apply_collect_limits(limiter, interests_api.bp)
    limits.apply_collect_limits(limiter, onsite_api.bp)  # the on-site script's asks and reports too
    from server.merchant import connect_api

    # A plugin's connect call: the token is the credential, so tries per address are few.
    limiter.shared_limit(lambda: app.config["RATELIMIT_CONNECT_PER_IP"], scope="connect-ip",
                         key_func=limits.ip_key)(connect_api.bp)

    from server.ops import api as ops
    from server.merchant.privacy_cli import register_cli

    app.register_blueprint(ops.bp)
    register_cli(app)
