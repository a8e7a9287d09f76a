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


# -- WooCommerce: one secret story -----------------------------------------------------------------


SITE = "https://wp.linen.example"


def woo_delivery(client, shop, secret, *, delivery_id="d-1"):
    """An order.created delivery as WooCommerce sends it from the webhooks the plugin made:
    ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(secret, raw body))."""
    data = json.dumps({"id": 727, "status": "pending", "created_via": "checkout", "currency": "USD",
                       "total": "29.35", "billing": {"email": "j@mail.example"}, "line_items": [],
                       "payment_url": f"{SITE}/checkout/order-pay/727/?pay_for_order=true&key=wc_order_1"}).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()
    return client.post(f"/v1/integrations/woocommerce/{shop.public_key}", data=data, content_type="application/json",
                       headers={"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-ID": "12",
                                "X-WC-Webhook-Delivery-ID": delivery_id, "X-WC-Webhook-Signature": signature,
                                "X-WC-Webhook-Source": SITE + "/"})


def test_woocommerce_delivery_signed_with_the_shops_secret_as_the_plugin_asks_is_accepted(client, session, new):
    # The plugin's page asks for the shop's secret and makes the webhooks with it; no
    # platform_secret was ever set in Pushcart's settings.
    new.shop.platform, new.shop.platform_domain = "woocommerce", SITE
    session.commit()
    response = woo_delivery(client, new.shop, new.secret)
    assert response.status_code == 200, response.json
    wrong = woo_delivery(client, new.shop, "whsec_someone_else", delivery_id="d-2")
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "bad_signature"


def test_woocommerce_keeps_accepting_the_platform_secret_of_existing_shops(client, session, new):
    new.shop.platform, new.shop.platform_domain, new.shop.platform_secret = "woocommerce", SITE, "wc_random_value_1"
    session.commit()
    assert woo_delivery(client, new.shop, "wc_random_value_1").status_code == 200
    assert woo_delivery(client, new.shop, new.secret, delivery_id="d-2").status_code == 200


def test_woocommerce_accepts_the_previous_secret_during_a_rotation(client, session, clock, new):
    new.shop.platform = "woocommerce"
    session.commit()
    assert client.post("/v1/admin/secret/rotate", headers=bearer(new.admin_token)).status_code == 200
    assert woo_delivery(client, new.shop, new.secret).status_code == 200
    clock.advance(hours=25)
    assert woo_delivery(client, new.shop, new.secret, delivery_id="d-2").status_code == 401
