// The plugin's helper script (assets/pushcart-wc.js) on a stubbed page, with node's test runner:
// `node --test integrations/woocommerce/tests/helper.test.js`.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SOURCE = fs.readFileSync(path.join(__dirname, "..", "pushcart-for-woocommerce", "assets", "pushcart-wc.js"), "utf8");

function page({ pushcart, calls = [], storage = {} } = {}) {
  const cookies = [];
  const handlers = {};
  const fetches = [];
  const body = { addEventListener: (type, fn) => { (handlers[type] = handlers[type] || []).push(fn); } };
  const doc = {
    readyState: "complete", body,
    get cookie() { return cookies.map((c) => c.split(";")[0]).join("; "); },
    set cookie(v) { cookies.push(v); },
    addEventListener() {}
  };
  const jq = () => ({ on: (types, fn) => types.split(" ").forEach((t) => body.addEventListener(t, fn)) });
  const win = {
    pushcartWc: { events: "/?wc-ajax=pushcart_events", nonce: "n0nce" },
    location: { protocol: "https:" },
    localStorage: { getItem: (k) => (k in storage ? storage[k] : null) },
    setTimeout, clearTimeout, jQuery: jq, pushcart,
    fetch(url, init) {
      fetches.push({ url, init });
      return Promise.resolve({ ok: true, json: () => Promise.resolve({ calls }) });
    }
  };
  vm.runInNewContext(SOURCE, { window: win, document: doc, RegExp, Array, encodeURIComponent, decodeURIComponent });
  const fire = (type) => (handlers[type] || []).forEach((fn) => fn({}));
  return { win, cookies, fetches, fire };
}
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

test("the widget's visitor id becomes a first-party cookie", async () => {
  const p = page({ pushcart: { __pushcart: true, status: () => Promise.resolve({ visitor_id: "Vid_abc-123XYZ" }) } });
  await wait(10);
  assert.deepStrictEqual(p.cookies, ["pushcart_vid=Vid_abc-123XYZ; path=/; max-age=31536000; SameSite=Lax; Secure"]);
});

test("a visitor id outside the widget's pattern is not written", async () => {
  const p = page({ pushcart: { __pushcart: true, status: () => Promise.resolve({ visitor_id: "x; domain=evil" }) } });
  await wait(10);
  assert.deepStrictEqual(p.cookies, []);
});

test("an AJAX add to cart fetches the queued calls once and hands only track calls to the widget", async () => {
  const track = ["track", "add_to_cart", { cart: { token: "t", total: "1.00", currency: "EUR", item_count: 1 } }];
  const pushed = [];
  const p = page({
    pushcart: { __pushcart: true, status: () => Promise.resolve({}), push: (c) => pushed.push(c) },
    calls: [track, ["identify", { email: "x@example.com" }], "junk"]
  });
  p.fire("added_to_cart");
  p.fire("wc-blocks_added_to_cart"); // WooCommerce's native twin of the same change
  await wait(200);
  assert.strictEqual(p.fetches.length, 1);
  assert.strictEqual(p.fetches[0].url, "/?wc-ajax=pushcart_events");
  assert.strictEqual(p.fetches[0].init.method, "POST");
  assert.strictEqual(p.fetches[0].init.credentials, "same-origin");
  assert.strictEqual(p.fetches[0].init.body, "nonce=n0nce");
  assert.deepStrictEqual(pushed, [track]);
});
