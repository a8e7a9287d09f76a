// Runs widget/pushcart.js in a bare page made of stubs and prints what it sent, as JSON.
// Usage: node widget_harness.js WIDGET_PATH SCENARIO_JSON
"use strict";
const fs = require("fs");
const vm = require("vm");

const [widgetPath, scenarioJson] = process.argv.slice(2);
const scenario = JSON.parse(scenarioJson);
const sent = [];
const beacons = [];
const listeners = {};
const storage = {};
const thrown = [];

const script = {
  src: "https://push.example/widget.js",
  getAttribute: (name) => (name === "data-shop" ? scenario.shop || "pk_test" : null),
};
const ldNodes = (scenario.jsonld || []).map((text) => ({ textContent: text }));
const document = {
  currentScript: script,
  referrer: scenario.referrer || "",
  cookie: "",
  visibilityState: "visible",
  querySelector: () => script,
  querySelectorAll: (sel) => (sel.indexOf("ld+json") >= 0 ? ldNodes : []),
  addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
  getElementById: () => null,
};
const window = {
  document,
  location: { href: scenario.url || "https://shop.example/p/1?utm_source=x", pathname: "/p/1", protocol: "https:" },
  navigator: { sendBeacon: (url, body) => { beacons.push({ url, body: JSON.parse(body) }); return true; } },
  localStorage: scenario.noStorage
    ? { getItem() { throw new Error("blocked"); }, setItem() { throw new Error("blocked"); } }
    : { getItem: (k) => (k in storage ? storage[k] : null), setItem: (k, v) => { storage[k] = String(v); } },
  crypto: { getRandomValues: (a) => { for (let i = 0; i < a.length; i++) a[i] = Math.floor(Math.random() * 256); return a; } },
  fetch: scenario.fetchThrows
    ? () => { throw new Error("no network"); }
    : (url, init) => {
      sent.push({ url, method: init && init.method, body: init && init.body ? JSON.parse(init.body) : null });
      return Promise.resolve({ ok: true, status: 202, json: () => Promise.resolve({}) });
    },
  setTimeout: (fn, ms) => setTimeout(() => { try { fn(); } catch (e) { thrown.push(String(e)); } }, Math.min(ms, 5)),
  clearTimeout: (t) => clearTimeout(t),
  addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
  Promise, URL, JSON, Math, Date, String, Number, Array, Uint8Array, RegExp, Error, Intl,
  pushcart: scenario.queue || undefined,
};
window.window = window;
const context = vm.createContext({ window, document, URL, Promise, JSON, Math, Date, setTimeout, clearTimeout });
try {
  vm.runInContext(fs.readFileSync(widgetPath, "utf8"), context);
} catch (e) {
  thrown.push(String(e));
}
const api = window.pushcart;
for (const call of scenario.calls || []) {
  try { api[call[0]].apply(api, call.slice(1)); } catch (e) { thrown.push(String(e)); }
}
setTimeout(() => {
  if (scenario.leave) for (const fn of listeners.pagehide || []) fn();
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ sent, beacons, thrown, storage, api: Object.keys(api || {}) }));
  }, 30);
}, 30);
