"""Staff accounts for tests: make one, log a test client in with it."""
from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from server.core.models import User
from server.merchant import accounts

PASSWORD = "correct horse battery"


def make_user(session: Any, shop: Any, now: Any, email: str, role: str = "owner", password: str = PASSWORD) -> User:
    """An account of ``shop`` (committed, so requests see it)."""
    user = accounts.create_user(session, shop, email, role, password, now)
    session.commit()
    return user


def csrf_of(client: FlaskClient, path: str = "/admin/login") -> str:
    """The CSRF token a page of the dashboard carries in its meta tag."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    """Post the e-mail log-in form; return the response."""
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": csrf_of(client)})


def logged_in(app: Any, email: str, password: str = PASSWORD) -> FlaskClient:
    """A new test client logged in as ``email``."""
    client = app.test_client()
    response = log_in(client, email, password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/"), response.status_code
    return client
