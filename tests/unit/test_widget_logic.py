"""The widget's logic in Node with a stubbed page: what it sends, and that it never throws."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "widget_harness.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run(**scenario) -> dict:
    result = subprocess.run(["node", str(HARNESS), str(ROOT / "widget" / "pushcart.js"), json.dumps(scenario)],
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
    assert out["sent"][0]["url"] == "https://push.example/v1/shops/pk_test/events"
    assert page == {"type": "page_view", "url": "https://shop.example/p/1?utm_source=x",
                    "referrer": "https://search.example/q", "id": page["id"]}
    assert product["product"] == {"id": "SKU-1", "title": "Linen Shirt", "price": "49.9", "currency": "EUR",
                                  "url": "https://shop.example/p/1", "image": "https://shop.example/img/1.jpg"}
    assert page["id"] != product["id"]
    # One visitor id, kept.
    visitor = out["storage"]["pushcart_vid"]
    assert out["sent"][0]["body"]["visitor_id"] == visitor and 8 <= len(visitor) <= 64


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
    assert config == {"url": "https://push.example/v1/shops/pk_test/config?locale=fr-CA", "credentials": "omit",
                      "body": None}
    [ask] = out["softask"]
    assert (ask["text"], ask["yes"], ask["no"]) == ("Des offres ?", "Oui, prévenez-moi", "Plus tard")
    assert 'role=dialog aria-modal=false aria-labelledby=pc-text' in ask["html"]
    # Without translations in the config: the English labels.
    [ask] = run(push={"permission": "default"}, config={"prompt": {"after_pageviews": 0}})["softask"]
    assert (ask["text"], ask["yes"], ask["no"]) == ("Get notified about your cart and orders?", "Yes, notify me", "Not now")

