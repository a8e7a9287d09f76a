"""Wires the operations and hardening pieces into an app (called once by ``create_app``).

Order matters for the request hooks: the request id and timer first, then the rate limits
(before any blueprint's own hooks, so a refused request costs no database work).
"""
from __future__ import annotations

from flask import Flask

from . import limits, logs, metrics, security


def init_app(app: Flask) -> None:
    """Logs, metrics, security headers and ProxyFix, rate limits, ops and privacy endpoints."""
    logs.init_app(app)
    metrics.init_app(app)
    security.init_app(app)
    limits.init_app(app)

    from .blueprints import ops, privacy
    from .privacy_cli import register_cli

    app.register_blueprint(ops.bp)
    app.register_blueprint(privacy.bp)
    register_cli(app)
