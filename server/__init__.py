"""Pushcart: a self-hosted browser-push service for online shops.

``create_app`` is the only entry point; nothing happens at import time.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from server.core import db
from server.core.clock import CLOCK, SystemClock
from server.core.config import load_config
from server.core.errors import register_error_handlers

def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: configuration, database, blueprints, error handlers and CLI."""
    instance_path = (test_config or {}).get("INSTANCE_PATH")
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    load_config(app, test_config)
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Chatty at INFO: APScheduler logs every tick (every 2 s), Alembic every plugin it loads.
    for noisy in ("apscheduler", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app.extensions[CLOCK] = app.config.get("CLOCK") or SystemClock()
    db.init_app(app)
    from server.collect.journal import check_journal

    check_journal(app)  # a journal folder that cannot be written is refused at start
    register_error_handlers(app)

    from server.ops import hardening

    hardening.init_app(app)  # logs, metrics, headers, rate limits, /healthz, /metrics, privacy

    from server.collect import interest_routes, onsite_routes, widget_routes as collect

    app.register_blueprint(collect.bp)
    app.register_blueprint(interest_routes.bp)  # the widget's "notify me"
    app.register_blueprint(onsite_routes.bp)  # the on-site script's asks and reports

    from server.clicks import click_routes as clicks

    app.register_blueprint(clicks.bp)

    from server.webhooks import webhook_routes as webhooks

    app.register_blueprint(webhooks.bp)

    from server.webhooks import platform_routes

    app.register_blueprint(platform_routes.bp)  # Shopify and WooCommerce

    from server import merchant

    merchant.register(app)  # the merchant side: the admin API at /v1/admin, the dashboard at /admin

    from server.merchant import connect_routes

    app.register_blueprint(connect_routes.bp)  # POST /v1/connect: a plugin connects itself with a connect value

    from server import demo
    from server.collect import assets

    app.register_blueprint(assets.bp)  # /widget.js, /sw.js
    app.register_blueprint(demo.bp)  # the demo storefront at /demo/
    app.register_blueprint(demo.root_bp)  # the demo shop's /pushcart-sw.js

    from server.cli import register_cli

    register_cli(app)
    if app.config["RUN_SCHEDULER"]:
        from server.delivery.push.vapid import subject_problem

        problem = subject_problem(app.config.get("VAPID_SUBJECT"))
        if problem:
            # This process would accept subscriptions and never send: say so once, plainly, and
            # on /healthz, instead of a traceback in every dispatcher tick.
            logging.getLogger(__name__).error("the dispatcher is not started: %s", problem)
        else:
            from server.delivery.scheduler import start_scheduler

            start_scheduler(app)
    return app
