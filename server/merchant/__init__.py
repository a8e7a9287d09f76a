"""The merchant side: two front doors (``doors``), their children, the services behind them."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the two doors on ``app``, every merchant child blueprint mounted in its door.

    This is the one place a child is attached: a child registered on the app directly would
    miss its door's guard (``tests/hardening/test_front_doors.py`` walks the URL map for that).
    """
    from server.merchant import api as shop_api
    from server.merchant import (campaigns_api, campaigns_dashboard, connect_dashboard, content_api, dashboard as pages,
                                 dashboard_content, doors, experiments_api, experiments_dashboard, privacy_api, vapid_api)

    if not doors.api._blueprints:  # children attach once a process; a door can't change after its first app
        for child in (shop_api.bp, campaigns_api.bp, content_api.bp, experiments_api.bp, privacy_api.bp, vapid_api.bp):
            doors.api.register_blueprint(child)
        for child in (pages.bp, campaigns_dashboard.bp, connect_dashboard.bp, dashboard_content.bp,
                      experiments_dashboard.bp):
            doors.dashboard.register_blueprint(child)
    app.register_blueprint(doors.api)
    app.register_blueprint(doors.dashboard)
    app.register_blueprint(doors.root)
