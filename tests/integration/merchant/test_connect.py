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
from tests.integration.merchant.test_dashboard import _ShopOrigin, log_in, shop_origin  # noqa: F401 (a fixture)

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


# -- refused origins and the connection check -------------------------------------------------------


WWW = "https://www.shop.example"


def widget_config(client, shop, origin=WWW):
    return client.get(f"/v1/shops/{shop.public_key}/config", headers={"Origin": origin})


def connection(client, new):
    response = client.get("/v1/admin/connection", headers=bearer(new.admin_token))
    assert response.status_code == 200, response.json
    return response.json


def test_a_refused_origin_is_logged_at_most_once_a_minute_and_remembered_with_its_count(client, session, clock, new,
                                                                                       caplog):
    caplog.set_level("WARNING", logger="server.collect.refused_origins")
    for _ in range(5):
        refused = widget_config(client, new.shop)
        assert refused.status_code == 403 and WWW in refused.json["error"]["message"]
    clock.advance(seconds=61)
    assert widget_config(client, new.shop).status_code == 403

    lines = [r.getMessage() for r in caplog.records if r.name == "server.collect.refused_origins"]
    assert len(lines) == 2 and all(WWW in line and new.shop.public_key in line for line in lines)
    checked = connection(client, new)
    assert [(r["origin"], r["count"]) for r in checked["refused_origins"]] == [(WWW, 6)]
    assert checked["refused_origins"][0]["last_seen_at"] == clock.now().isoformat()
    problem = next(p for p in checked["problems"] if p["code"] == "origin_refused")
    assert WWW in problem["message"] and "allow" in problem["fix"].lower()
    assert checked["ok"] is False


def test_only_the_last_few_refused_origins_are_kept_per_shop(client, session, clock, new):
    for n in range(15):
        clock.advance(seconds=1)
        assert widget_config(client, new.shop, f"https://site{n}.example").status_code == 403
    kept = [r["origin"] for r in connection(client, new)["refused_origins"]]
    assert kept == [f"https://site{n}.example" for n in range(14, 4, -1)]


def test_allow_this_origin_on_the_dashboard_adds_it_and_the_widget_gets_through(client, session, clock, new):
    assert widget_config(client, new.shop).status_code == 403
    csrf = log_in(client, new.admin_token)
    overview = client.get("/admin/").get_data(as_text=True)
    assert WWW in overview and 'id="refused-origins-banner"' in overview
    install = client.get("/admin/install").get_data(as_text=True)
    assert WWW in install and 'action="/admin/connect/origins/allow"' in install
    assert client.post("/admin/connect/origins/allow", data={"origin": WWW}).status_code == 400  # no CSRF
    response = client.post("/admin/connect/origins/allow", data={"origin": WWW, "csrf_token": csrf})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Shop, new.shop.id).origins == [ORIGIN, WWW]
    assert widget_config(client, new.shop).status_code == 200
    assert connection(client, new)["refused_origins"] == []
    assert 'id="refused-origins-banner"' not in client.get("/admin/").get_data(as_text=True)


def test_connection_check_names_a_refused_webhook_delivery_and_its_fix(client, session, clock, new):
    new.shop.platform, new.shop.platform_domain = "woocommerce", SITE
    session.commit()
    checked = connection(client, new)
    assert checked["webhooks"]["woocommerce"]["last_delivery_at"] is None
    assert any(p["code"] == "no_webhook_delivery" for p in checked["problems"])

    assert woo_delivery(client, new.shop, "wc_wrong_secret_1").status_code == 401
    checked = connection(client, new)
    seen = checked["webhooks"]["woocommerce"]
    assert (seen["last_failure_code"], seen["last_failure_at"]) == ("bad_signature", clock.now().isoformat())
    problem = next(p for p in checked["problems"] if p["code"] == "webhook_refused")
    assert "webhook secret" in problem["fix"]

    clock.advance(minutes=5)
    assert woo_delivery(client, new.shop, new.secret, delivery_id="d-2").status_code == 200
    checked = connection(client, new)
    assert checked["webhooks"]["woocommerce"]["last_delivery_at"] == clock.now().isoformat()
    assert not any(p["code"] in ("webhook_refused", "no_webhook_delivery") for p in checked["problems"])


def test_connection_check_reports_the_last_event_and_the_worker_file(client, session, clock, new):
    checked = connection(client, new)
    assert checked["last_event_at"] is None and any(p["code"] == "no_events" for p in checked["problems"])
    assert checked["worker"][0]["origin"] == ORIGIN and checked["worker"][0]["ok"] is False
    assert any(p["code"] == "worker_unreachable" for p in checked["problems"])
    sent = client.post(f"/v1/shops/{new.shop.public_key}/events", headers={"Origin": ORIGIN},
                       json={"visitor_id": "v-connect-0001", "events": [{"type": "page_view", "url": ORIGIN + "/"}]})
    assert sent.status_code == 202, sent.json
    assert connection(client, new)["last_event_at"] == clock.now().isoformat()


def test_connection_page_names_each_problem_and_checks_the_worker_file_on_request(client, session, clock, app,
                                                                                  shop_origin, monkeypatch):
    monkeypatch.setattr(_ShopOrigin, "requests", [])
    monkeypatch.setattr(_ShopOrigin, "body", f'importScripts("{app.config["PUBLIC_URL"]}/sw.js");'.encode())
    created = make_shop(session, clock.now(), origins=[shop_origin])
    session.commit()
    csrf = log_in(client, created.admin_token)
    page = client.get("/admin/connect/").get_data(as_text=True)
    assert 'data-problem="no_events"' in page and "script tag" in page
    assert _ShopOrigin.requests == []  # the page alone fetches nothing
    checked = client.post("/admin/connect/check", data={"csrf_token": csrf}).get_data(as_text=True)
    assert _ShopOrigin.requests == ["/pushcart-sw.js"]
    assert "the service worker file is in place" in checked and 'data-problem="worker_unreachable"' not in checked


# -- the connect token ---------------------------------------------------------------------------


PLUGIN_SITE = "https://wp.linen.example"


def connect_value(client, new):
    response = client.post("/v1/admin/connect-token", headers=bearer(new.admin_token))
    assert response.status_code == 201, response.json
    return response.json


def plugin_connect(client, value, **body):
    """What the plugin sends once the merchant pasted the one value."""
    return client.post("/v1/connect", json={"token": value, "origin": PLUGIN_SITE, "platform": "woocommerce", **body})


def test_connect_token_registers_the_site_and_answers_everything_the_plugin_needs(app, client, session, clock, new):
    made = connect_value(client, new)
    public_url = app.config["PUBLIC_URL"]
    assert made["connect_value"].startswith(f"{public_url}/connect/{new.shop.public_key}.")
    assert made["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat()
    session.expire_all()
    token = made["connect_value"].rsplit(".", 1)[1]
    stored = session.get(Shop, new.shop.id)
    assert token not in (stored.connect_token_hash or "")  # only its hash is kept
    assert stored.connect_token_hash == hashlib.sha256(token.encode()).hexdigest()

    response = plugin_connect(client, made["connect_value"], webhook_secret="wc_existing_secret_1")
    assert response.status_code == 200, response.json
    answer = response.json
    assert answer["public_key"] == new.shop.public_key
    assert answer["widget_url"] == f"{public_url}/widget.js"
    assert (answer["worker_path"], answer["webhook_secret"]) == ("/pushcart-sw.js", new.secret)
    assert answer["webhooks"]["url"] == f"{public_url}/v1/integrations/woocommerce/{new.shop.public_key}"
    assert answer["webhooks"]["topics"] == ["order.created", "order.updated", "product.updated"]
    session.expire_all()
    shop = session.get(Shop, new.shop.id)
    assert shop.origins == [ORIGIN, PLUGIN_SITE] and shop.platform == "woocommerce"
    assert (shop.platform_domain, shop.platform_secret) == (PLUGIN_SITE, "wc_existing_secret_1")
    # The widget now gets through on the site, and a delivery signed as answered is accepted.
    assert widget_config(client, new.shop, PLUGIN_SITE).status_code == 200
    assert woo_delivery(client, new.shop, answer["webhook_secret"]).status_code == 200


def test_connecting_a_refused_site_forgets_its_refusals(client, session, new):
    # The widget was on the site before the plugin connected it: the site is refused first.
    assert widget_config(client, new.shop, PLUGIN_SITE).status_code == 403
    assert client.get("/v1/admin/connection", headers=bearer(new.admin_token)).json["refused_origins"]
    assert plugin_connect(client, connect_value(client, new)["connect_value"]).status_code == 200
    check = client.get("/v1/admin/connection", headers=bearer(new.admin_token)).json
    assert check["refused_origins"] == [] and "origin_refused" not in {p["code"] for p in check["problems"]}


def test_connect_token_is_single_use_expires_and_refuses_a_wrong_token_alike(client, session, clock, new):
    made = connect_value(client, new)
    value = made["connect_value"]
    wrong = value[:-4] + ("aaaa" if not value.endswith("aaaa") else "bbbb")
    for bad in (wrong, "nonsense", f"pk_unknown.{value.rsplit('.', 1)[1]}"):
        refused = plugin_connect(client, bad)
        assert refused.status_code == 401 and refused.json["error"]["code"] == "invalid_connect_token", bad
    assert plugin_connect(client, value).status_code == 200
    again = plugin_connect(client, value)
    assert again.status_code == 401 and again.json["error"]["code"] == "invalid_connect_token"

    late = connect_value(client, new)["connect_value"]
    clock.advance(hours=1, seconds=1)
    assert plugin_connect(client, late).status_code == 401
    # A new token replaces the one before.
    first, second = connect_value(client, new)["connect_value"], connect_value(client, new)["connect_value"]
    assert plugin_connect(client, first).status_code == 401
    assert plugin_connect(client, second).status_code == 200


@pytest.mark.parametrize("body, code", [
    ({"origin": "https://wp.linen.example/shop?x=1"}, "invalid_origin"),
    ({"origin": "http://wp.linen.example:99999"}, "invalid_origin"),
    ({"origin": "http://wp.linen.example:port"}, "invalid_origin"),
    ({"platform": "magento"}, "invalid_field"),
    ({"webhook_secret": "short"}, "invalid_field"),
])
def test_connect_refuses_a_bad_request_and_keeps_the_token(client, session, new, body, code):
    value = connect_value(client, new)["connect_value"]
    refused = plugin_connect(client, value, **body)
    assert refused.status_code in (400, 422) and refused.json["error"]["code"] == code
    assert plugin_connect(client, value).status_code == 200


def test_connect_is_rate_limited_per_address(app, client, new):
    app.config["RATELIMIT_CONNECT_PER_IP"] = "3/minute"
    codes = [plugin_connect(client, "pk_x.nope").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_install_page_makes_one_value_to_paste_behind_csrf(app, client, session, new):
    csrf = log_in(client, new.admin_token)
    assert client.post("/admin/connect/token").status_code == 400  # no CSRF token
    page = client.post("/admin/connect/token", data={"csrf_token": csrf}).get_data(as_text=True)
    prefix = f"{app.config['PUBLIC_URL']}/connect/{new.shop.public_key}."
    assert 'id="connect-value"' in page and prefix in page
    value = page.split(prefix, 1)[1].split("<", 1)[0]
    assert plugin_connect(client, prefix + value).status_code == 200
