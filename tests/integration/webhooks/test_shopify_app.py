"""The operator's Shopify app (integrations/shopify): its webhooks and its app proxy, both signed
with the app's client secret (``SHOPIFY_CLIENT_SECRET``), reach the shop whose myshopify domain
they name, with nothing for the merchant to paste."""
from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from server.core.db import get_db
from server.core.models import Checkout, Order, Shop
from server.webhooks.shopify import proxy_signature
from tests.factories import make_shop
from tests.integration.webhooks.test_platform_webhooks import (CART_TOKEN, DOMAIN, ORIGIN, b64hmac, counts, fixture,
                                                      send_cart_update, shopify, subscribed_visitor)

CLIENT_SECRET = "shpss_app_client_secret_of_the_operator"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SHOPIFY_CLIENT_SECRET": CLIENT_SECRET}


@pytest.fixture
def app_shop(session, clock):
    """A Shopify shop that installed the operator's app: its domain is set, no platform secret."""
    new = make_shop(session, clock.now(), origins=[ORIGIN])
    new.shop.platform, new.shop.platform_domain = "shopify", DOMAIN
    session.commit()
    return new


def app_delivery(client, topic, body, *, webhook_id="wh-app-1", secret=CLIENT_SECRET, domain=DOMAIN):
    """A delivery as the app's subscriptions in shopify.app.toml send it: one URL for every shop."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id,
               "X-Shopify-Hmac-Sha256": b64hmac(secret, data), "X-Shopify-Api-Version": "2026-07",
               "X-Shopify-Triggered-At": "2026-12-07T05:00:00Z"}
    if domain is not None:
        headers["X-Shopify-Shop-Domain"] = domain
    return client.post("/v1/integrations/shopify", data=data, headers=headers, content_type="application/json")


def test_app_checkout_signed_with_the_client_secret_reaches_the_shop_of_its_domain(client, session, clock, app_shop):
    visitor = subscribed_visitor(session, app_shop.shop, clock, visitor_key="v-app-01")
    send_cart_update(client, app_shop.shop, "v-app-01", CART_TOKEN)
    response = app_delivery(client, "checkouts/create", fixture("shopify/checkouts_create.json"))
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    checkout = session.scalars(sa.select(Checkout)).one()
    assert (checkout.shop_id, checkout.visitor_id) == (app_shop.shop.id, visitor.id)
    again = app_delivery(client, "checkouts/create", fixture("shopify/checkouts_create.json"))
    assert again.json["duplicate"] is True and counts(session)["Checkout"] == 1


def test_app_delivery_with_another_key_is_refused_before_the_shop_is_looked_up(client, session, app_shop):
    for domain in (DOMAIN, "nobody-here.myshopify.com"):
        response = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"),
                                secret="shpss_someone_else", domain=domain)
        assert response.status_code == 401 and response.json["error"]["code"] == "bad_signature"
    assert counts(session)["Order"] == 0


def test_app_delivery_for_a_domain_no_shop_holds_is_404(client, session, app_shop):
    response = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"),
                            domain="nobody-here.myshopify.com")
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_shop_domain"
    missing = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"), domain=None)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unknown_shop_domain"
    assert counts(session)["Order"] == 0


def test_app_delivery_for_a_domain_two_shops_claim_goes_to_neither(client, session, clock, app_shop, caplog):
    other = make_shop(session, clock.now(), origins=["https://other.example"])
    other.shop.platform, other.shop.platform_domain = "shopify", DOMAIN
    session.commit()
    with caplog.at_level(logging.WARNING):
        response = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"))
    assert response.status_code == 409 and response.json["error"]["code"] == "ambiguous_shop_domain"
    assert DOMAIN in caplog.text
    assert counts(session)["Order"] == 0


def test_a_woocommerce_shop_is_never_found_by_a_shopify_domain(client, session, app_shop):
    shop = session.get(Shop, app_shop.shop.id)
    shop.platform = "woocommerce"
    session.commit()
    response = app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"))
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_shop_domain"


def test_without_a_client_secret_the_app_route_refuses(app_config, make_app, clock):
    app = make_app({**app_config, "SHOPIFY_CLIENT_SECRET": None})
    with get_db(app).sessionmaker() as s:
        new = make_shop(s, clock.now(), origins=[ORIGIN])
        new.shop.platform, new.shop.platform_domain = "shopify", DOMAIN
        s.commit()
    response = app_delivery(app.test_client(), "orders/paid", fixture("shopify/orders_paid.json"))
    assert response.status_code == 401 and response.json["error"]["code"] == "no_app_secret"


def test_the_per_shop_url_accepts_the_client_secret_too(client, session, app_shop):
    # A merchant who subscribed webhooks from the app to the shop's own URL pastes no secret.
    response = shopify(client, app_shop.shop, "orders/paid", fixture("shopify/orders_paid.json"),
                       secret=CLIENT_SECRET)
    assert response.status_code == 200, response.json
    assert session.scalars(sa.select(Order)).one().shop_id == app_shop.shop.id


def proxy_params(shop=DOMAIN, secret=CLIENT_SECRET, **extra):
    params = {"shop": shop, "logged_in_customer_id": "", "path_prefix": "/apps/pushcart", "timestamp": "1796619600",
              **extra}
    return {**params, "signature": proxy_signature(secret, MultiDict(params))}


def test_the_app_proxy_serves_the_worker_for_the_shop_it_names(client, app, app_shop):
    good = client.get(f"/v1/integrations/shopify/proxy/pushcart-sw.js?{urlencode(proxy_params())}")
    assert good.status_code == 200 and good.mimetype == "text/javascript"
    assert good.get_data(as_text=True) == f'importScripts("{app.config["PUBLIC_URL"]}/sw.js");\n'
    bad = client.get(f"/v1/integrations/shopify/proxy/pushcart-sw.js?"
                     f"{urlencode(proxy_params(secret='shpss_someone_else'))}")
    assert bad.status_code == 401 and bad.json["error"]["code"] == "bad_signature"
    unknown = client.get(f"/v1/integrations/shopify/proxy/pushcart-sw.js?"
                         f"{urlencode(proxy_params(shop='nobody-here.myshopify.com'))}")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_shop_domain"


MANIFEST = "/v1/integrations/shopify/proxy/manifest.webmanifest"
ICON = "//shop.example/cdn/shop/files/logo.png?v=1&width={0}&height={0}&crop=center"


def test_the_app_proxy_serves_the_shops_manifest_with_the_icons_the_embed_passes(client, session, app_shop):
    shop = session.get(Shop, app_shop.shop.id)
    shop.name, shop.prompt = "Linen & Co. Home Goods", {**shop.prompt, "color": "#0A7C66"}
    session.commit()
    response = client.get(f"{MANIFEST}?{urlencode(proxy_params(icon_192=ICON.format(192), icon_512=ICON.format(512)))}")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    assert response.json == {
        "name": "Linen & Co. Home Goods", "short_name": "Linen & Co.", "start_url": "/", "scope": "/",
        "display": "standalone", "background_color": "#ffffff", "theme_color": "#0A7C66",
        "icons": [{"src": "https:" + ICON.format(192), "sizes": "192x192"},
                  {"src": "https:" + ICON.format(512), "sizes": "512x512"}]}


@pytest.mark.parametrize("icon", ["https://evil.example/x.png", "http://shop.example/x.png", "javascript:alert(1)",
                                  "//cdn.shopify.com.evil.example/x.png", "/relative.png"])
def test_the_manifest_takes_icons_only_from_shopifys_cdn_or_the_shops_hosts(client, app_shop, icon):
    response = client.get(f"{MANIFEST}?{urlencode(proxy_params(icon_192=icon, icon_512='//cdn.shopify.com/s/i.png'))}")
    assert response.status_code == 200
    assert response.json["icons"] == [{"src": "https://cdn.shopify.com/s/i.png", "sizes": "512x512"}]


def test_the_manifest_is_signed_like_the_other_proxy_routes(client, app_shop):
    # The icons are part of what Shopify signs: a changed one breaks the signature.
    params = proxy_params(icon_192=ICON.format(192))
    tampered = client.get(f"{MANIFEST}?{urlencode({**params, 'icon_192': 'https://shop.example/other.png'})}")
    assert tampered.status_code == 401 and tampered.json["error"]["code"] == "bad_signature"
    other_key = client.get(f"{MANIFEST}?{urlencode(proxy_params(secret='shpss_someone_else'))}")
    assert other_key.status_code == 401
    unsigned = client.get(f"{MANIFEST}?shop={DOMAIN}")
    assert unsigned.status_code == 401
    unknown = client.get(f"{MANIFEST}?{urlencode(proxy_params(shop='nobody-here.myshopify.com'))}")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_shop_domain"
    # Without icons the manifest still has what a Home Screen app needs.
    plain = client.get(f"{MANIFEST}?{urlencode(proxy_params())}").json
    assert plain["display"] == "standalone" and plain["name"] and "icons" not in plain


def test_the_per_shop_proxy_url_serves_the_manifest_for_its_own_shop_only(client, session, clock, app_shop):
    path = f"/v1/integrations/shopify/{app_shop.shop.public_key}/proxy/manifest.webmanifest"
    assert client.get(f"{path}?{urlencode(proxy_params())}").json["name"] == app_shop.shop.name
    # Another Shopify shop's signed request does not get this shop's manifest.
    assert client.get(f"{path}?{urlencode(proxy_params(shop='second-shop.myshopify.com'))}").status_code == 401


def test_the_per_shop_proxy_url_accepts_the_client_secret_too(client, app_shop):
    path = f"/v1/integrations/shopify/{app_shop.shop.public_key}/proxy/pushcart-sw.js"
    assert client.get(f"{path}?{urlencode(proxy_params())}").status_code == 200


def test_app_deliveries_count_against_the_named_shops_webhook_limit(app_config, make_app, clock):
    app = make_app({**app_config, "RATELIMIT_WEBHOOKS_PER_SHOP": "2/minute"})
    client = app.test_client()
    with get_db(app).sessionmaker() as s:
        for domain in (DOMAIN, "second-shop.myshopify.com"):
            new = make_shop(s, clock.now(), origins=[ORIGIN])
            new.shop.platform, new.shop.platform_domain = "shopify", domain
        s.commit()
    first = [app_delivery(client, "customers/create", {"id": i}, webhook_id=f"a-{i}").status_code for i in range(3)]
    second = app_delivery(client, "customers/create", {"id": 9}, webhook_id="b-1",
                          domain="second-shop.myshopify.com").status_code
    assert (first, second) == ([200, 200, 429], 200)


def test_the_install_page_shows_the_app_embed_values_when_the_service_has_the_app(client, session, app_shop):
    from tests.integration.merchant.test_dashboard import log_in
    log_in(client, app_shop.admin_token)
    page = client.get("/admin/install").get_data(as_text=True)
    assert '<details id="install-shopify" open>' in page
    assert 'id="shopify-app-steps"' in page
    # What the merchant types into the app embed's two settings, and what the settings must hold.
    assert '<code id="shopify-embed-url">http://pushcart.test</code>' in page
    assert f'<code id="shopify-embed-key">{app_shop.shop.public_key}</code>' in page
    assert f'id="shopify-domain-state">{DOMAIN}<' in page
    assert "/apps/pushcart/pushcart-sw.js" in page
    assert CLIENT_SECRET not in page


def test_without_the_app_the_install_page_shows_the_hand_made_steps_only(app_config, make_app, clock):
    from tests.integration.merchant.test_dashboard import log_in
    app = make_app({**app_config, "SHOPIFY_CLIENT_SECRET": None})
    client = app.test_client()
    with get_db(app).sessionmaker() as s:
        new = make_shop(s, clock.now(), origins=[ORIGIN])
        new.shop.platform = "shopify"
        s.commit()
    log_in(client, new.admin_token)
    page = client.get("/admin/install").get_data(as_text=True)
    assert 'id="shopify-app-steps"' not in page and 'id="shopify-webhook-url"' in page


def test_shop_list_names_the_shops_that_claim_a_domain(runner, session, clock, app_shop):
    other = make_shop(session, clock.now(), name="Elsewhere", origins=["https://other.example"])
    session.commit()
    result = runner.invoke(args=["shop", "list", "--domain", DOMAIN.upper()])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [{"public_key": app_shop.shop.public_key, "name": app_shop.shop.name, "platform": "shopify",
                     "platform_domain": DOMAIN}]
    everyone = runner.invoke(args=["shop", "list"]).output.splitlines()
    assert {json.loads(line)["public_key"] for line in everyone} == {app_shop.shop.public_key, other.shop.public_key}


def test_the_client_secret_is_never_logged(client, session, app_shop, caplog):
    with caplog.at_level(logging.DEBUG):
        app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"))
        app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"), secret="wrong", webhook_id="x")
        app_delivery(client, "orders/paid", fixture("shopify/orders_paid.json"), domain="nobody.myshopify.com")
    assert caplog.records and CLIENT_SECRET not in caplog.text


def test_the_client_secret_is_no_key_for_a_shop_without_a_domain(client, session, app_shop):
    # An app delivery names its shop by domain: a shop that names none could be handed another
    # shop's captured delivery, so for it only its own platform secret counts.
    shop = session.get(Shop, app_shop.shop.id)
    shop.platform_domain = None
    session.commit()
    response = shopify(client, app_shop.shop, "orders/paid", fixture("shopify/orders_paid.json"),
                       secret=CLIENT_SECRET)
    assert response.status_code == 401 and response.json["error"]["code"] == "no_platform_secret"
    assert "myshopify domain" in response.json["error"]["message"]  # the fix for an app-installed shop
    path = f"/v1/integrations/shopify/{app_shop.shop.public_key}/proxy/pushcart-sw.js"
    assert client.get(f"{path}?{urlencode(proxy_params())}").status_code == 401
    assert counts(session)["Order"] == 0
