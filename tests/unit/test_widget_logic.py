"""The widget's logic in Node with a stubbed page: what it sends, and that it never throws.

It runs the file the service serves (``widget/dist/pushcart.min.js``, built from
``widget/pushcart.js``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from server.collect import softask
from server.core.shops import DEFAULT_PROMPT

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "widget_harness.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run(**scenario) -> dict:
    config = scenario.get("config")
    if isinstance(config, dict) and isinstance(config.get("prompt"), dict) and "html" not in config["prompt"]:
        # As the server's config does: the soft-ask's markup and style rendered from the prompt.
        scenario["config"] = {**config, "prompt": {**config["prompt"], **softask.render(config["prompt"])}}
    result = subprocess.run(["node", str(HARNESS), str(ROOT / "widget" / "dist" / "pushcart.min.js"), json.dumps(scenario)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["thrown"] == [], out["thrown"]
    return out


def events(out: dict) -> list[dict]:
    batches = [s["body"] for s in out["sent"] if s["url"].endswith("/events")] + [b["body"] for b in out["beacons"]]
    return [e for batch in batches for e in batch["events"]]


GRAPH = json.dumps({"@context": "https://schema.org", "@graph": [
    {"@type": "BreadcrumbList"},
    {"@type": ["Product", "Thing"], "name": "Linen Shirt", "sku": "SKU-1", "url": "/p/1",
     "image": [{"@type": "ImageObject", "url": "/img/1.jpg"}],
     "offers": [{"@type": "Offer", "price": "49.9", "priceCurrency": "EUR"}]}]})


def test_page_view_and_product_view_from_json_ld_graph():
    out = run(jsonld=["{not json", GRAPH], referrer="https://search.example/q")
    [page, product] = events(out)
    [batch] = [s for s in out["sent"] if s["url"].endswith("/events")]
    assert batch["url"] == "https://push.example/v1/shops/pk_test/events" and batch["method"] == "POST"
    assert page == {"type": "page_view", "url": "https://shop.example/p/1?utm_source=x",
                    "referrer": "https://search.example/q", "id": page["id"]}
    assert product["product"] == {"id": "SKU-1", "title": "Linen Shirt", "price": "49.9", "currency": "EUR",
                                  "url": "https://shop.example/p/1", "image": "https://shop.example/img/1.jpg"}
    assert page["id"] != product["id"]
    # One visitor id, kept.
    visitor = out["storage"]["pushcart_vid"]
    assert batch["body"]["visitor_id"] == visitor and 8 <= len(visitor) <= 64


def test_queued_calls_run_and_merchant_data_is_cleaned():
    out = run(queue=[["track", "add_to_cart", {
        "product": {"id": 17, "title": " Shirt ", "price": 19.999, "currency": "usd", "url": "javascript:x"},
        "cart": {"token": "c1", "total": "39.90", "currency": "USD", "item_count": "2",
                 "checkout_url": "/checkout", "items": [{"id": "a", "quantity": 2, "price": "x"}]}}],
        ["identify", {"email": " a@b.example ", "first_name": "Alex"}], ["track", "purchase", {}],
        ["nonsense"]])
    types = [e["type"] for e in events(out)]
    assert types == ["page_view", "add_to_cart", "identify"]
    carted = events(out)[1]
    assert carted["product"] == {"id": "17", "title": "Shirt", "price": "20.00"}
    assert carted["cart"] == {"token": "c1", "total": "39.90", "currency": "USD", "item_count": 2,
                              "checkout_url": "https://shop.example/checkout", "items": [{"id": "a", "quantity": 2}]}
    assert events(out)[2]["email"] == "a@b.example"
    assert set(out["api"]) >= {"track", "identify", "subscribe", "unsubscribe", "status", "push"}


def test_leave_goes_by_beacon_with_what_is_still_queued():
    out = run(leave=True, calls=[["track", "remove_from_cart", {"product": {"id": "a", "title": "A"}}]])
    # The flush timer ran first for the page view; the leave and anything after went as one beacon.
    assert [e["type"] for e in events(out)][-1] == "leave"
    assert out["beacons"] and out["beacons"][-1]["url"].endswith("/events")


def test_never_throws_without_storage_network_or_a_shop():
    run(noStorage=True, fetchThrows=True, leave=True, jsonld=[GRAPH], calls=[["track", "page_view"], ["status"],
                                                                           ["subscribe"], ["unsubscribe"]])
    assert run(shop="bad key with spaces")["sent"] == []


def sent_to(out: dict, path: str) -> list[dict]:
    return [s for s in out["sent"] if s["url"].split("?")[0].endswith(path)]


def test_config_is_asked_in_the_visitors_language_and_labels_the_soft_ask():
    prompt = {"after_pageviews": 0, "text": "Des offres ?", "yes": "Oui, prévenez-moi", "no": "Plus tard"}
    out = run(push={"permission": "default"}, language="fr-CA", config={"prompt": prompt})
    [config] = sent_to(out, "/config")
    # A GET (no method given), without cookies.
    assert config == {"url": "https://push.example/v1/shops/pk_test/config?locale=fr-CA&page=%2Fp%2F1",
                      "credentials": "omit", "body": None}
    [ask] = out["softask"]
    assert (ask["text"], ask["yes"], ask["no"]) == ("Des offres ?", "Oui, prévenez-moi", "Plus tard")
    assert '<div class="box" role="dialog" aria-modal="false" aria-labelledby="pc-text">' in ask["html"]
    # Without texts in the config: the default text and the English labels.
    [ask] = run(push={"permission": "default"}, config={"prompt": {"after_pageviews": 0}})["softask"]
    assert (ask["text"], ask["yes"], ask["no"]) == (DEFAULT_PROMPT["text"], "Yes, notify me", "Not now")
    # Without markup (a config from before the designer) there is nothing to show.
    assert run(push={"permission": "default"}, config={"prompt": {"after_pageviews": 0, "html": ""}})["softask"] == []


def test_config_names_an_on_site_preview_marker_of_the_page_and_no_other_parameter():
    out = run(url="https://shop.example/p/1?utm_source=x&pushcart_preview=eyJz.abc-_1&ref=y")
    [config] = sent_to(out, "/config")
    assert config["url"].endswith("&page=%2Fp%2F1%26pushcart_preview%3DeyJz.abc-_1"), config["url"]
    out = run(url="https://shop.example/p/1?pushcart_preview=tok")
    [config] = sent_to(out, "/config")
    assert config["url"].endswith("&page=%2Fp%2F1%3Fpushcart_preview%3Dtok"), config["url"]


def test_the_onsite_script_loads_only_when_the_config_names_it():
    assert run(config={})["scripts"] == []
    src = "https://push.example/onsite.js?shop=pk_test"
    assert run(config={"onsite": src})["scripts"] == [src]


SHOPIFY_CART = {"token": "c1-7a2f?key=9b", "note": None, "total_price": 4990, "currency": "EUR", "item_count": 2,
                "items": [{"id": 111, "key": "111:ab", "product_id": 7, "variant_id": 111, "title": "Linen Shirt - M",
                           "price": 2495, "quantity": 2, "url": "/products/linen?variant=111",
                           "image": "https://cdn.shopify.example/linen.jpg", "sku": "LIN-M"}]}
SHOPIFY_EVENT_CART = {"token": "c1-7a2f?key=9b", "total": "49.90", "currency": "EUR", "item_count": 2,
                      "items": [{"id": "111", "title": "Linen Shirt - M", "price": "24.95", "quantity": 2,
                                 "url": "https://shop.example/products/linen?variant=111",
                                 "image": "https://cdn.shopify.example/linen.jpg"}]}


def test_shopify_cart_is_sent_as_cart_update_when_it_changed():
    more = {**SHOPIFY_CART, "total_price": 7485, "item_count": 3,
            "items": [{**SHOPIFY_CART["items"][0], "quantity": 3}]}
    # Loaded, then the page says twice that its cart changed: unchanged, then one more shirt.
    out = run(config={"platform": "shopify"}, cartJs=[SHOPIFY_CART, SHOPIFY_CART, more], cartEvents=2)
    carts = sent_to(out, "/cart.js")
    assert carts == [{"url": "/cart.js", "credentials": "same-origin", "body": None}] * 3  # GETs, the shop's cookies
    updates = [e for e in events(out) if e["type"] == "cart_update"]
    assert [u["cart"] for u in updates] == [SHOPIFY_EVENT_CART, {
        **SHOPIFY_EVENT_CART, "total": "74.85", "item_count": 3, "items": [{**SHOPIFY_EVENT_CART["items"][0], "quantity": 3}]}]
    assert updates[0]["url"] == "https://shop.example/p/1?utm_source=x" and updates[0]["id"]
    assert [s["url"] for s in out["sent"] if s["url"].endswith("/events")] == ["https://push.example/v1/shops/pk_test/events"] * 2
    # The next page with the same cart sends nothing new.
    again = run(config={"platform": "shopify"}, cartJs=[more], storage=out["storage"])
    assert len(sent_to(again, "/cart.js")) == 1 and [e["type"] for e in events(again)] == ["page_view"]


def test_shopify_cart_is_only_read_on_shopify_and_a_bad_answer_is_ignored():
    assert sent_to(run(config={"platform": "woocommerce"}, cartJs=[SHOPIFY_CART], cartEvents=1), "/cart.js") == []
    for answer in [{"status": 404, "text": "Not found"}, {"status": 200, "text": "<html>"}, {"item_count": 0},
                   {"token": "c1", "total_price": "free", "currency": "EUR", "item_count": 1, "items": []}]:
        out = run(config={"platform": "shopify"}, cartJs=[answer], cartEvents=1)
        assert len(sent_to(out, "/cart.js")) == 2
        assert [e["type"] for e in events(out)] == ["page_view"] and "error" not in out["status"], answer
        assert "pushcart_cart" not in out["storage"]
    # The merchant's own track call takes the new type too.
    out = run(calls=[["track", "cart_update", {"cart": {"token": "c9", "total": "5", "currency": "USD", "item_count": 1}}]])
    assert [e["cart"] for e in events(out) if e["type"] == "cart_update"] == [
        {"token": "c9", "total": "5", "currency": "USD", "item_count": 1}]


def test_notify_me_buttons_subscribe_then_record_the_interest():
    out = run(push={"permission": "default", "answer": "granted"}, config={"vapid_public_key": "BAAA"}, readyState="loading",
              notify=[{"product": "SKU-1", "variant": "V-1", "kinds": "price_drop, nonsense", "label": "Tell me"},
                      {"product": "SKU-2"}, {"label": "no product, no button"}], clickNotify=True)
    done = {"tag": "BUTTON", "type": "button", "className": "pushcart-notify", "text": "We'll let you know", "disabled": True}
    assert out["buttons"] == [[done], [done], []]
    visitor = out["storage"]["pushcart_vid"]
    interests = sent_to(out, "/interests")
    assert {s["url"] for s in interests} == {"https://push.example/v1/shops/pk_test/interests"}
    assert {s["method"] for s in interests} == {"POST"}
    assert sorted((s["body"] for s in interests), key=lambda b: b["product_id"]) == [
        {"visitor_id": visitor, "product_id": "SKU-1", "variant_id": "V-1", "kinds": ["price_drop"]},
        {"visitor_id": visitor, "product_id": "SKU-2", "kinds": ["back_in_stock", "price_drop"]}]
    # Subscribed first: the subscription reached the server before any interest.
    urls = [s["url"] for s in out["sent"]]
    assert urls.index("https://push.example/v1/shops/pk_test/subscriptions") < urls.index(interests[0]["url"])
    assert out["registered"][0] == "/pushcart-sw.js?shop=pk_test&v=" + visitor
    assert out["status"]["subscribed"] is True and "error" not in out["status"]


def test_notify_me_from_the_api_and_its_failures():
    out = run(push={"permission": "granted", "subscribed": True}, queue=[["notifyMe", " SKU-9 "]],
              calls=[["notifyMe", "SKU-8", 42, ["back_in_stock"]]])
    assert sorted((s["body"]["product_id"], s["body"].get("variant_id"), s["body"]["kinds"])
                  for s in sent_to(out, "/interests")) == [("SKU-8", "42", ["back_in_stock"]),
                                                           ("SKU-9", None, ["back_in_stock", "price_drop"])]
    assert "notifyMe" in out["api"]
    # Permission refused: no interest, the button stays usable, status() says why.
    out = run(push={"permission": "default", "answer": "denied"}, notify=[{"product": "SKU-1"}], clickNotify=True)
    assert out["buttons"] == [[{"tag": "BUTTON", "type": "button", "className": "pushcart-notify", "text": "Notify me",
                                "disabled": False}]]
    assert sent_to(out, "/interests") == [] and "permission denied" in out["status"]["error"]
    # The server refuses the interest; and a browser without push.
    out = run(push={"permission": "granted", "subscribed": True}, interestsStatus=500, notify=[{"product": "SKU-1"}],
              clickNotify=True)
    assert out["buttons"][0][0]["disabled"] is False and "/interests 500" in out["status"]["error"]
    out = run(notify=[{"product": "SKU-1"}], clickNotify=True, calls=[["notifyMe"]])
    assert out["buttons"][0][0]["disabled"] is False and sent_to(out, "/interests") == [] and out["status"]["error"]


OLD_KEY = "B" + "A" * 85 + "E"  # two VAPID public keys (base64url of 65 bytes)
NEW_KEY = "B" + "Q" * 85 + "E"


def test_a_subscription_made_with_a_rotated_key_is_renewed_in_the_background():
    out = run(push={"permission": "granted", "subscribed": True, "madeWith": OLD_KEY},
              config={"vapid_public_key": NEW_KEY})
    # No prompt (permission is granted): the old subscription ends, a new one is made with the new key ...
    assert out["pushLog"] == [["unsubscribe", "https://push.example.net/send/1"],
                              ["subscribe", "https://push.example.net/send/2"]]
    assert out["softask"] == []
    # ... and posted with the old endpoint, which the server replaces by it.
    [posted] = sent_to(out, "/subscriptions")
    assert posted["body"]["subscription"]["endpoint"] == "https://push.example.net/send/2"
    assert posted["body"]["replaces"] == "https://push.example.net/send/1"
    assert posted["body"]["application_server_key"] == NEW_KEY
    assert out["storage"]["pushcart_replaces"] == "" and out["status"]["subscribed"] is True


def test_a_subscription_made_with_the_current_key_is_only_sent_again():
    out = run(push={"permission": "granted", "subscribed": True, "madeWith": NEW_KEY},
              config={"vapid_public_key": NEW_KEY})
    assert out["pushLog"] == []
    [posted] = sent_to(out, "/subscriptions")
    assert posted["body"]["subscription"]["endpoint"] == "https://push.example.net/send/1"
    assert posted["body"]["application_server_key"] == NEW_KEY and "replaces" not in posted["body"]
    # A browser that does not say which key it subscribed with: nothing renewed, no key claimed.
    out = run(push={"permission": "granted", "subscribed": True}, config={"vapid_public_key": NEW_KEY})
    assert out["pushLog"] == [] and "application_server_key" not in sent_to(out, "/subscriptions")[0]["body"]


def test_the_old_endpoint_is_kept_until_the_server_has_the_new_subscription():
    out = run(push={"permission": "granted", "subscribed": True, "madeWith": OLD_KEY},
              config={"vapid_public_key": NEW_KEY}, subscriptionsStatus=503)
    assert [s["body"]["replaces"] for s in sent_to(out, "/subscriptions")] == ["https://push.example.net/send/1"]
    assert out["storage"]["pushcart_replaces"] == "https://push.example.net/send/1"


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.4 Mobile/15E148 Safari/604.1")
IPAD_AS_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/18.4 Safari/605.1.15")
COACHING = "Add this shop to your Home Screen: Share, then Add to Home Screen, to get notifications"
SHOW_AT_ONCE = {"prompt": {"after_pageviews": 0, "dismiss_days": 7}, "vapid_public_key": "BAAA"}


@pytest.mark.parametrize("device", [{"userAgent": IPHONE, "platform": "iPhone"},
                                    {"userAgent": IPAD_AS_MAC, "platform": "MacIntel", "maxTouchPoints": 5}])
def test_safari_on_ios_outside_the_home_screen_coaches_instead_of_asking(device):
    # Safari's tab on iOS has no PushManager: a prompt there could never work.
    out = run(manifest=True, config=SHOW_AT_ONCE, **device)
    [coach] = out["softask"]
    assert coach["text"] == COACHING
    assert coach["yes"] is None and coach["no"] == "OK"
    assert out["pushLog"] == [] and out["status"]["permission"] == "unsupported"


def test_closing_the_coaching_remembers_it_like_not_now():
    out = run(manifest=True, config=SHOW_AT_ONCE, userAgent=IPHONE, clickSoftAsk="no")
    assert float(out["storage"]["pushcart_dismissed_until"]) > 0
    again = run(manifest=True, config=SHOW_AT_ONCE, userAgent=IPHONE, storage=out["storage"])
    assert again["softask"] == []


def test_no_coaching_without_a_manifest_or_on_other_browsers_without_push():
    assert run(manifest=False, config=SHOW_AT_ONCE, userAgent=IPHONE)["softask"] == []
    assert run(manifest=True, config=SHOW_AT_ONCE)["softask"] == []  # not iOS: nothing to coach


@pytest.mark.parametrize("home", [{"standalone": True}, {"displayMode": "standalone"}])
def test_inside_the_home_screen_app_permission_is_asked_only_from_the_soft_asks_click(home):
    shown = run(manifest=True, config=SHOW_AT_ONCE, userAgent=IPHONE, push={"permission": "default"}, **home)
    [ask] = shown["softask"]
    assert ask["yes"] == "Yes, notify me" and ask["text"] != COACHING
    assert shown["pushLog"] == []  # never asked by itself

    out = run(manifest=True, config=SHOW_AT_ONCE, userAgent=IPHONE, push={"permission": "default"},
              clickSoftAsk="yes", **home)
    assert out["pushLog"][0] == ["requestPermission", "in a click"]
    assert out["status"]["subscribed"] is True
