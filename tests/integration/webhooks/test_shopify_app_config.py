"""The Shopify app in integrations/shopify: its configuration names the topics the service
handles and the routes that take them, and its theme app extension passes Shopify's own
theme-check (``@shopify/theme-check-node``, installed by ``make node-deps``)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from server.webhooks import shopify

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "integrations" / "shopify"
EXTENSION = APP / "extensions" / "pushcart-embed"
BLOCK = EXTENSION / "blocks" / "pushcart.liquid"
THEME_CHECK = APP / "theme-check.cjs"


@pytest.fixture(scope="module")
def config() -> dict:
    return tomllib.loads((APP / "shopify.app.toml").read_text())


def route_of(app, url: str) -> str:
    """The endpoint the service would run for ``url``'s path (method as Shopify sends it)."""
    adapter = app.url_map.bind("push.example.com")
    method = "POST" if "/proxy" not in url else "GET"
    endpoint, _ = adapter.match(urlsplit(url).path, method=method)
    return endpoint


def test_the_app_config_has_what_the_cli_requires(config):
    assert config["client_id"] and config["name"] and isinstance(config["embedded"], bool)
    assert urlsplit(config["application_url"]).scheme == "https"
    assert config["auth"]["redirect_urls"]
    assert config["webhooks"]["api_version"] == "2026-07"
    assert (config["app_proxy"]["prefix"], config["app_proxy"]["subpath"]) == ("apps", "pushcart")


def test_the_app_asks_only_for_the_scopes_its_webhooks_and_proxy_need(config):
    scopes = set(config["access_scopes"]["scopes"].split(","))
    assert scopes == {"read_orders", "read_fulfillments", "read_products", "write_app_proxy"}


def test_every_subscribed_topic_is_one_the_service_handles_and_all_are_subscribed(config):
    topics = [topic for sub in config["webhooks"]["subscriptions"] for topic in sub["topics"]]
    assert sorted(topics) == sorted(shopify.TRANSLATORS)


def test_the_app_urls_reach_the_app_routes_of_the_service(app, config):
    origin = urlsplit(config["application_url"]).netloc
    for sub in config["webhooks"]["subscriptions"]:
        assert urlsplit(sub["uri"]).netloc == origin
        assert route_of(app, sub["uri"]) == "integrations.shopify_app_webhook"
    proxy = config["app_proxy"]["url"]
    assert urlsplit(proxy).netloc == origin
    # Shopify appends what follows /apps/pushcart on the storefront to the proxy URL.
    assert route_of(app, proxy + "/pushcart-sw.js") == "integrations.shopify_app_proxy_worker"
    assert route_of(app, proxy + "/manifest.webmanifest") == "integrations.shopify_app_proxy_manifest"


def test_the_app_embed_block_targets_the_head_and_asks_for_the_url_shop_key_and_manifest():
    source = BLOCK.read_text()
    schema = json.loads(re.search(r"{%\s*schema\s*%}(.*?){%\s*endschema\s*%}", source, re.S).group(1))
    # The head: browsers read <link rel="manifest"> only there.
    assert schema["target"] == "head"
    settings = {setting["id"]: setting for setting in schema["settings"]}
    assert list(settings) == ["pushcart_url", "shop_key", "link_manifest", "manifest_icon"]
    assert (settings["link_manifest"]["type"], settings["link_manifest"]["default"]) == ("checkbox", True)
    assert settings["manifest_icon"]["type"] == "image_picker"
    assert tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())["type"] == "theme"
    # The Install page's tag, each value escaped, deferred: from the head it waits for the page.
    assert "<script src=\"{{ pushcart_base | append: '/widget.js' | escape }}\"" in source
    assert 'data-shop="{{ pushcart_key | escape }}" defer></script>' in source


def theme_check(folder: Path) -> tuple[int, list[dict]]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@shopify" / "theme-check-node").is_dir():
        pytest.skip("node or node_modules/@shopify/theme-check-node missing: run `make node-deps`")
    done = subprocess.run([node, str(THEME_CHECK), str(folder)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_extension_passes_shopifys_theme_check():
    assert theme_check(EXTENSION) == (0, [])


@pytest.mark.parametrize(("change", "check"), [
    (("{%- endif -%}\n\n{% schema %}", "\n{% schema %}"), "LiquidHTMLSyntaxError"),
    ((" defer></script>", "></script>"), "ParserBlockingScript"),
    (('"target": "head",', '"target": "head",,'), "ValidSchema"),
    # A check of the app-extension config only: a theme may have it, an app block may not.
    (("\n{% schema %}", "\n{% javascript %}var a;{% endjavascript %}\n{% schema %}"), "AppBlockValidTags"),
])
def test_theme_check_reports_a_broken_block(tmp_path, change, check):
    copy = tmp_path / "pushcart-embed"
    shutil.copytree(EXTENSION, copy)
    block = copy / "blocks" / "pushcart.liquid"
    old, new = change
    assert old in block.read_text()
    block.write_text(block.read_text().replace(old, new))
    returncode, offenses = theme_check(copy)
    assert returncode == 1 and check in {offense["check"] for offense in offenses}, offenses


def render_embed(settings: dict) -> str:
    """The app-embed block rendered by LiquidJS with these settings, as a storefront shows it."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "liquidjs").is_dir():
        pytest.skip("node or node_modules/liquidjs missing: run `make node-deps`")
    done = subprocess.run([node, str(ROOT / "tests" / "integration" / "webhooks" / "shopify_embed_harness.cjs")],
                          input=json.dumps({"settings": settings}), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


MANIFEST_LINK = '<link rel="manifest" href="/apps/pushcart/manifest.webmanifest">'
WIDGET_TAG = '<script src="https://push.example.com/widget.js" data-shop="pk_live_1" defer></script>'


def lines(html: str) -> list[str]:
    return [line.strip() for line in html.splitlines() if line.strip()]


@pytest.mark.parametrize("url", ["https://push.example.com", "https://push.example.com/", " https://push.example.com/ "])
def test_the_app_embed_renders_the_manifest_link_and_the_script_tag(url):
    # The manifest setting is on by default: a shop that only switches the embed on gets the link.
    assert lines(render_embed({"pushcart_url": url, "shop_key": " pk_live_1 "})) == [MANIFEST_LINK, WIDGET_TAG]


def test_the_app_embed_links_no_manifest_when_the_merchant_turns_it_off():
    html = render_embed({"pushcart_url": "https://push.example.com", "shop_key": "pk_live_1", "link_manifest": False})
    assert lines(html) == [WIDGET_TAG]


def test_the_app_embeds_manifest_link_carries_the_icon_and_the_proxy_serves_it(app, client, session, clock):
    """The link as the embed renders it, requested as Shopify's app proxy forwards it (the path
    under the proxy URL, the query signed with the client secret): the manifest has the icons."""
    from server.core.models import Shop
    from tests.factories import make_shop
    from tests.integration.webhooks.test_shopify_app import CLIENT_SECRET, proxy_params

    icon = {"src": "//linen-co.example/cdn/shop/files/logo.png?v=17"}
    html = render_embed({"pushcart_url": "https://push.example.com", "shop_key": "pk_live_1", "manifest_icon": icon})
    href = re.search(r'<link rel="manifest" href="([^"]+)">', html).group(1).replace("&amp;", "&")
    path, query = href.split("?", 1)
    assert path == "/apps/pushcart/manifest.webmanifest"

    app.config["SHOPIFY_CLIENT_SECRET"] = CLIENT_SECRET
    made = make_shop(session, clock.now(), name="Linen Co", origins=["https://linen-co.example"])
    shop = session.get(Shop, made.shop.id)
    shop.platform, shop.platform_domain = "shopify", "linen-co.myshopify.com"
    session.commit()
    proxy = tomllib.loads((APP / "shopify.app.toml").read_text())["app_proxy"]["url"]
    params = proxy_params(shop="linen-co.myshopify.com", **dict(parse_qsl(query)))
    response = client.get(urlsplit(proxy).path + path.removeprefix("/apps/pushcart") + "?" + urlencode(params))
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    manifest = response.json
    assert (manifest["name"], manifest["display"], manifest["start_url"]) == ("Linen Co", "standalone", "/")
    assert manifest["icons"] == [
        {"src": f"https:{icon['src']}&width={size}&height={size}&crop=center", "sizes": f"{size}x{size}"}
        for size in (192, 512)]


@pytest.mark.parametrize("settings", [{}, {"pushcart_url": "https://push.example.com"}, {"shop_key": "pk_1"},
                                      {"pushcart_url": "  ", "shop_key": "pk_1"}])
def test_the_app_embed_adds_nothing_until_both_values_are_set(settings):
    assert render_embed({"pushcart_url": None, "shop_key": None, **settings}) == ""


def test_the_app_embed_escapes_what_the_merchant_typed():
    html = render_embed({"pushcart_url": 'https://push.example.com/"><script>x()</script>',
                         "shop_key": '"><img src=x onerror=y()>'})
    assert "<script>x()" not in html and "<img" not in html
    assert html.count("<script") == 1 and 'data-shop="&#34;&gt;&lt;img' in html
