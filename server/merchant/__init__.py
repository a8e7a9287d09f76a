"""The merchant side: two front doors (``doors``), their children, the services behind them."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the two doors on ``app``, every merchant child blueprint mounted in its door.

    This is the one place a child is attached: a child registered on the app directly would
    miss its door's guard (``tests/hardening/test_front_doors.py`` walks the URL map for that).
    """
    from server.merchant import doors
    from server.merchant.api import campaigns as campaigns_api, coupons as coupons_api, experiments as experiments_api
    from server.merchant.api import onsite as onsite_api, privacy as privacy_api, shop as shop_api
    from server.merchant.api import vapid_keys as vapid_keys_api
    from server.merchant.pages import campaigns as campaigns_pages, connect as connect_pages, coupons as coupons_pages
    from server.merchant.pages import account as account_pages, experiments as experiments_pages, onsite as onsite_pages
    from server.merchant.pages import shop as shop_pages, softask as softask_pages, team as team_pages
    from server.merchant.pages import test_devices as test_devices_pages

    if not doors.api._blueprints:  # children attach once a process; a door can't change after its first app
        for child in (shop_api.bp, campaigns_api.bp, coupons_api.bp, experiments_api.bp, privacy_api.bp,
                      vapid_keys_api.bp, onsite_api.bp):
            doors.api.register_blueprint(child)
        for child in (shop_pages.bp, campaigns_pages.bp, connect_pages.bp, coupons_pages.bp, experiments_pages.bp,
                      onsite_pages.bp, softask_pages.bp, team_pages.bp, account_pages.bp, test_devices_pages.bp):
            doors.dashboard.register_blueprint(child)
    app.register_blueprint(doors.api)
    app.register_blueprint(doors.dashboard)
    app.register_blueprint(doors.root)
