"""The on-site script (``widget/dist/pushcart-onsite.min.js``, the file served) in Node with a stubbed
page: it asks where it should, and never throws into the page nor leaves a global behind, whatever
the page or the network does. (The dialog itself is checked in a real Chromium:
``tests/browser/test_onsite_storefront.py``.)"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "widget" / "dist" / "pushcart-onsite.min.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# A page stub in a fresh V8 context: scenario.src (the script's URL), scenario.status ("ok",
# "throws", "missing"), scenario.answer (what POST /onsite answers: a JSON value, "reject" or
# "garbage"), scenario.shadow ("throws": attachShadow fails). Prints what was sent, what was
# thrown (uncaught errors and unhandled rejections), the globals the script added, and the
# elements appended to the body.
HARNESS = r"""
const vm = require("vm"), fs = require("fs");
const [file, raw] = process.argv.slice(2), scenario = JSON.parse(raw);
const sent = [], thrown = [], appended = [];
process.on("uncaughtException", (e) => thrown.push(String(e)));
process.on("unhandledRejection", (e) => thrown.push(String(e)));
function element(tag) {
  const el = {tagName: tag.toUpperCase(), children: [], style: {}, attributes: {}, listeners: {},
    setAttribute: (k, v) => { el.attributes[k] = String(v); },
    appendChild: (c) => { el.children.push(c); return c; },
    addEventListener: (t, f) => { (el.listeners[t] = el.listeners[t] || []).push(f); },
    remove: () => {}, focus: () => {}, querySelector: () => null,
    attachShadow: () => { if (scenario.shadow === "throws") throw new Error("no shadow DOM"); return element("#shadow"); }};
  Object.defineProperty(el, "firstChild", {get: () => el.children[0] || null});
  return el;
}
const body = element("body");
body.appendChild = (c) => { appended.push(c.id || c.tagName); return c; };
const document = {
  currentScript: scenario.src === null ? null : {src: scenario.src || "https://push.example/onsite.js?shop=pk_test"},
  body, activeElement: body, createElement: element, querySelectorAll: () => [],
  addEventListener: () => {},
};
const window = {
  document, location: {href: "https://shop.example/cart"}, performance: {now: () => 5000},
  setTimeout: (f) => setTimeout(f, 1), matchMedia: () => ({matches: true}),
  CSSStyleSheet: function () { this.replaceSync = () => {}; },
  fetch: (url, init) => {
    sent.push({url, body: init && JSON.parse(init.body)});
    if (scenario.answer === "reject") return Promise.reject(new Error("offline"));
    if (scenario.answer === "garbage") return Promise.resolve({ok: true, json: () => Promise.reject(new SyntaxError("bad JSON"))});
    return Promise.resolve({ok: true, json: () => Promise.resolve(scenario.answer === undefined ? {message: null} : scenario.answer)});
  },
};
if (scenario.status !== "missing") window.pushcart = {
  status: () => { if (scenario.status === "throws") throw new Error("status broke"); return Promise.resolve({visitor_id: "v-0000-0001"}); },
  subscribe: () => Promise.resolve(true),
};
window.window = window;
const context = vm.createContext(window);
const before = new Set(Object.keys(window));
try { vm.runInContext(fs.readFileSync(file, "utf8"), context); } catch (e) { thrown.push("sync: " + e); }
setTimeout(() => {
  const added = Object.keys(window).filter((k) => !before.has(k));
  process.stdout.write(JSON.stringify({sent, thrown, added, appended}));
}, 100);
"""


def run(tmp_path, **scenario) -> dict:
    harness = tmp_path / "onsite_harness.js"
    harness.write_text(HARNESS)
    result = subprocess.run(["node", str(harness), str(SCRIPT), json.dumps(scenario)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_asks_with_the_page_and_its_dwell_and_shows_an_answered_message(tmp_path):
    message = {"token": "t0k", "title": "Hi", "text": "x", "code": "C-1", "cta": {"label": "Go", "url": "https://shop.example/"},
               "optin": False, "replies": ["A", "B"], "close_label": "Close"}
    out = run(tmp_path, answer={"message": message})
    assert out["sent"] == [{"url": "https://push.example/v1/shops/pk_test/onsite",
                            "body": {"visitor_id": "v-0000-0001", "url": "https://shop.example/cart", "product": False,
                                     "dwell": 5, "exit": False}}]
    assert out["appended"] == ["pushcart-onsite"]
    assert out["thrown"] == [] and out["added"] == []


@pytest.mark.parametrize("scenario", [
    {"status": "missing"}, {"status": "throws"}, {"src": None}, {"src": "https://evil.example/other.js"},
    {"answer": "reject"}, {"answer": "garbage"}, {"answer": None}, {"answer": {"message": {"token": 1}}},
    {"answer": {"message": {"title": "x", "replies": "not a list"}}},
    {"answer": {"message": {"title": "x"}}, "shadow": "throws"},
])
def test_it_never_throws_into_the_page_nor_leaves_a_global(tmp_path, scenario):
    out = run(tmp_path, **scenario)
    assert out["thrown"] == [], scenario
    assert out["added"] == [], scenario
