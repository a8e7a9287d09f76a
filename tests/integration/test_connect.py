"""Connecting a shop without an engineer: the webhook secret shown and rotated (command, merchant
API, dashboard), one secret for WooCommerce, refused origins and the connection check, and the
connect token; on SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.core.models import Shop
from server.webhooks.native import sign
from tests.factories import make_shop
from tests.integration.test_dashboard import csrf_from, log_in

ORIGIN = "https://shop.example"
ORDER = {"id": "o-1", "order_id": "1001", "status": "paid", "total": "20.00", "currency": "USD"}


@pytest.fixture
def new(session, clock):
    created = make_shop(session, clock.now(), origins=[ORIGIN])
    session.commit()
    return created


def native_order(client, shop, secret, clock, order_id="o-1"):
    """The shop's back end sends a paid order through the native webhook, signed with ``secret``."""
    data = json.dumps({**ORDER, "id": order_id}).encode()
    return client.post(f"/v1/webhooks/{shop.public_key}/orders", data=data, content_type="application/json",
                       headers={"X-Pushcart-Signature": sign(secret, int(clock.now().timestamp()), data)})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# -- the webhook secret: shown and rotated -------------------------------------------------------


def test_shop_secret_command_shows_the_secret_and_rotates_it_with_a_grace_period(runner, client, session, clock,
                                                                                 new):
    shown = runner.invoke(args=["shop", "secret", "--shop", new.shop.public_key])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"public_key": new.shop.public_key, "secret": new.secret}

    rotated = runner.invoke(args=["shop", "secret", "--shop", new.shop.public_key, "--rotate"])
    assert rotated.exit_code == 0, rotated.output
    answer = json.loads(rotated.output)
    assert answer["secret"].startswith("whsec_") and answer["secret"] != new.secret
    assert answer["previous_secret_valid_until"] == (clock.now() + timedelta(hours=24)).isoformat()
    # A delivery signed with the old secret before the rotation still gets through for a day.
    assert native_order(client, new.shop, new.secret, clock).status_code == 200
    assert native_order(client, new.shop, answer["secret"], clock, "o-2").status_code == 200
    clock.advance(hours=24, seconds=1)
    refused = native_order(client, new.shop, new.secret, clock, "o-3")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_signature"
    assert native_order(client, new.shop, answer["secret"], clock, "o-4").status_code == 200


def test_shop_secret_command_names_an_unknown_shop(runner):
    result = runner.invoke(args=["shop", "secret", "--shop", "pk_nope"])
    assert result.exit_code != 0 and "unknown shop" in result.output


def test_merchant_api_rotates_the_secret_with_the_admin_token_only(client, session, clock, new):
    assert client.post("/v1/admin/secret/rotate").status_code == 401
    response = client.post("/v1/admin/secret/rotate", headers=bearer(new.admin_token))
    assert response.status_code == 200
    assert response.json["secret"] != new.secret
    assert response.json["previous_secret_valid_until"] == (clock.now() + timedelta(hours=24)).isoformat()
    session.expire_all()
    assert session.get(Shop, new.shop.id).secret == response.json["secret"]


def test_dashboard_shows_the_secret_and_rotates_it_behind_csrf(client, session, clock, new):
    assert client.get("/admin/connect/").status_code == 302  # not logged in: to the log-in page
    csrf = log_in(client, new.admin_token)
    page = client.get("/admin/connect/")
    assert page.status_code == 200 and new.secret in page.get_data(as_text=True)
    assert client.post("/admin/connect/secret/rotate").status_code == 400  # no CSRF token
    session.expire_all()
    assert session.get(Shop, new.shop.id).secret == new.secret
    response = client.post("/admin/connect/secret/rotate", data={"csrf_token": csrf})
    assert response.status_code == 302
    session.expire_all()
    rotated = session.get(Shop, new.shop.id)
    assert rotated.secret != new.secret and rotated.previous_secret == new.secret
    assert rotated.secret in client.get("/admin/connect/").get_data(as_text=True)
