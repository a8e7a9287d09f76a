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
