"""The service worker's ``pushsubscriptionchange`` in Node with a stubbed worker scope: the
renewed subscription is posted with the VAPID key it was made with and the endpoint it replaces,
so the server keeps signing with the right key (after a rotation, the old one)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const [swPath, scenario] = [process.argv[1], JSON.parse(process.argv[2])];
const listeners = {}, sent = [];
const bytes = (k) => new Uint8Array(Buffer.from(k.replace(/-/g, "+").replace(/_/g, "/"), "base64"));
const made = (endpoint, key) => ({ endpoint, options: { applicationServerKey: bytes(key).buffer },
  toJSON: () => ({ endpoint, keys: { p256dh: "p", auth: "a" } }) });
const self = {
  location: new URL("https://shop.example/pushcart-sw.js?shop=pk_test&v=visitor_0001"),
  addEventListener: (type, fn) => { listeners[type] = fn; },
  registration: { pushManager: { subscribe: (o) => Promise.resolve(made("https://push.example.net/new",
    Buffer.from(o.applicationServerKey).toString("base64url"))) } },
};
const fetch = (url, init) => {
  sent.push({ url, method: (init && init.method) || "GET", body: init && init.body ? JSON.parse(init.body) : null });
  return Promise.resolve({ ok: true, json: () => Promise.resolve({ vapid_public_key: scenario.configKey }) });
};
const context = vm.createContext({ self, fetch, URL, Promise, JSON, Uint8Array, String, Math,
  atob: (s) => Buffer.from(s, "base64").toString("binary"), btoa: (s) => Buffer.from(s, "binary").toString("base64") });
vm.runInContext(fs.readFileSync(swPath, "utf8"), context);
let waited;
listeners.pushsubscriptionchange({
  oldSubscription: made("https://push.example.net/old", scenario.oldKey),
  newSubscription: scenario.renewedKey ? made("https://push.example.net/renewed", scenario.renewedKey) : null,
  waitUntil: (p) => { waited = p; },
});
waited.then(() => process.stdout.write(JSON.stringify(sent)));
"""

OLD_KEY = "B" + "A" * 85 + "E"
NEW_KEY = "B" + "Q" * 85 + "E"


def run(**scenario) -> list[dict]:
    result = subprocess.run(["node", "-e", HARNESS, str(ROOT / "service_worker" / "sw.js"), json.dumps(scenario)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_subscription_the_browser_renewed_keeps_its_key_and_replaces_the_old_one():
    posts = [s for s in run(oldKey=OLD_KEY, renewedKey=OLD_KEY, configKey=NEW_KEY) if s["method"] == "POST"]
    assert [p["body"]["subscription"]["endpoint"] for p in posts] == ["https://push.example.net/renewed"]
    assert posts[0]["body"]["application_server_key"] == OLD_KEY  # made with the old key: signed with it
    assert posts[0]["body"]["replaces"] == "https://push.example.net/old"
    assert posts[0]["body"]["visitor_id"] == "visitor_0001"


def test_a_dropped_subscription_is_made_again_with_the_configs_key():
    sent = run(oldKey=OLD_KEY, renewedKey=None, configKey=NEW_KEY)
    [post] = [s for s in sent if s["method"] == "POST"]
    assert post["body"]["application_server_key"] == NEW_KEY
    assert post["body"]["replaces"] == "https://push.example.net/old"


PUSH_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const [swPath, scenario] = [process.argv[1], JSON.parse(process.argv[2])];
const listeners = {}, shown = [], opened = [];
const self = {
  location: new URL("https://shop.example/pushcart-sw.js?shop=pk_test&v=visitor_0001"),
  addEventListener: (type, fn) => { listeners[type] = fn; },
  registration: { showNotification: (title, options) => { shown.push({ title, options }); return Promise.resolve(); } },
  clients: { matchAll: () => Promise.resolve([]), openWindow: (url) => { opened.push(url); return Promise.resolve(); } },
};
const context = vm.createContext({ self, URL, Promise, JSON, Uint8Array, String, Math, Array });
// The server writes its public URL into the worker when it serves it.
vm.runInContext(fs.readFileSync(swPath, "utf8").replace("__PUSHCART_PUBLIC_URL__", "https://pushcart.example"), context);
const run = (type, event) => new Promise((resolve) => listeners[type]({ ...event, waitUntil: resolve }));
(async () => {
  await run("push", { data: { json: () => scenario.payload } });
  const data = shown[0].options.data;
  await run("notificationclick", { action: scenario.action || "", notification: { data, close: () => {} } });
  process.stdout.write(JSON.stringify({ shown, opened }));
})();
"""

CLICK = "https://pushcart.example/c/2a.AAAAAAAAAAAAAAAAAAAAAA"


def push(payload: dict, action: str = "") -> dict:
    result = subprocess.run(["node", "-e", PUSH_HARNESS, str(ROOT / "service_worker" / "sw.js"),
                             json.dumps({"payload": payload, "action": action})],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


DECLARATIVE = {"web_push": 8030, "push_id": 42, "kind": "shipped", "url": CLICK,
               "notification": {"title": "On its way", "body": "Track it", "navigate": CLICK, "lang": "de",
                                "dir": "ltr", "tag": "order-1", "icon": "https://shop.example/i.png",
                                "actions": [{"action": "a1", "title": "Track", "navigate": CLICK + "?a=1"}]}}


def test_a_declarative_message_handed_to_the_worker_is_shown_and_clicks_go_through_the_click_link():
    result = push(DECLARATIVE)
    [note] = result["shown"]
    assert note["title"] == "On its way"
    options = note["options"]
    assert (options["body"], options["lang"], options["dir"], options["tag"]) == ("Track it", "de", "ltr", "order-1")
    assert options["icon"] == "https://shop.example/i.png"
    assert options["actions"] == [{"action": "a1", "title": "Track"}]
    assert (options["data"]["push_id"], options["data"]["kind"]) == (42, "shipped")
    assert result["opened"] == [CLICK]


def test_a_declarative_messages_button_opens_its_own_click_link():
    assert push(DECLARATIVE, action="a1")["opened"] == [CLICK + "?a=1"]


def test_todays_payload_is_still_shown_as_before():
    result = push({"push_id": 7, "kind": "shipped", "title": "Hello", "body": "B", "url": CLICK,
                   "actions": [{"action": "a1", "title": "Go", "url": CLICK + "?a=1"}]}, action="a1")
    assert [n["title"] for n in result["shown"]] == ["Hello"]
    assert result["opened"] == [CLICK + "?a=1"]


def test_a_declarative_message_without_a_notification_still_shows_something():
    result = push({"web_push": 8030, "push_id": 9, "url": CLICK})
    assert [n["title"] for n in result["shown"]] == ["New notification"]
