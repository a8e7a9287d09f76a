"""The dashboard's Account page: who is logged in, with which role, and "sign out everywhere".

Open to every logged-in user (a marketer too); the form posts to the door's
``logout_everywhere``.
"""
from __future__ import annotations

from flask import Blueprint, g

from server.core.clock import get_clock
from server.core.db import get_session
from server.merchant import accounts
from server.merchant.doors import render_page

bp = Blueprint("account", __name__)


@bp.get("/account")
def account() -> str:
    """The logged-in user's account and live sessions."""
    sessions = accounts.session_counts(get_session(), g.shop.id, get_clock().now())
    return render_page("admin/account.html", active="account",
                       session_count=sessions.get(g.user.id if g.user is not None else None, 0))
