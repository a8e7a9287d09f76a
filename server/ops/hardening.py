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
    from server.clicks import click_routes as clicks
    from server.collect import interest_routes, onsite_routes, widget_routes as collect
    from server.webhooks import platform_routes, webhook_routes as webhooks

    limiter = limits.init_app(app, collect=collect.bp, webhooks=(webhooks.bp, platform_routes.bp), clicks=clicks.bp)
    # The widget's "notify me" is a collect call: it shares the collect budgets (same scopes).
    limits.apply_collect_limits(limiter, interest_routes.bp)
    limits.apply_collect_limits(limiter, onsite_routes.bp)  # the on-site script's asks and reports too
    from server.merchant import connect_routes

    # A plugin's connect call: the token is the credential, so tries per address are few.
    limiter.shared_limit(lambda: app.config["RATELIMIT_CONNECT_PER_IP"], scope="connect-ip",
                         key_func=limits.ip_key)(connect_routes.bp)

    from server.ops import health_routes as ops
    from server.merchant.privacy_cli import register_cli

    app.register_blueprint(ops.bp)
    register_cli(app)
