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
const storage = Object.assign({}, scenario.storage || {});
const thrown = [];
const registered = [];

// A minimal element: attributes, children, listeners, and a class/tag querySelector over its children.
function element(tag, attributes) {
  const el = {
    tagName: tag.toUpperCase(), attributes: Object.assign({}, attributes || {}), children: [], listeners: {},
    textContent: "", className: "", id: "", parentNode: null,
    getAttribute: (name) => (name in el.attributes ? el.attributes[name] : null),
    setAttribute: (name, value) => { el.attributes[name] = String(value); },
    appendChild: (child) => { el.children.push(child); child.parentNode = el; return child; },
    remove: () => { if (el.parentNode) el.parentNode.children.splice(el.parentNode.children.indexOf(el), 1); el.parentNode = null; },
    addEventListener: (type, fn) => { (el.listeners[type] = el.listeners[type] || []).push(fn); },
    querySelector: (sel) => {
      for (const child of el.children) {
        const hit = (sel[0] === "." ? child.className === sel.slice(1) : sel[0] === "#" ? child.id === sel.slice(1)
          : child.tagName === sel.toUpperCase()) ? child
          : child.querySelector(sel);
        if (hit) return hit;
      }
      return null;
    },
    attachShadow: () => { el.shadowRoot = element("#shadow-root"); return el.shadowRoot; },
  };
  // innerHTML: only the soft-ask sets it (the server's markup); record it and expose its parts
  // (p#pc-text with the desktop text, .no, .yes) as elements.
  Object.defineProperty(el, "innerHTML", {
    get: () => el.html || "",
    set: (html) => {
      el.html = html;
      const text = (re) => { const m = html.match(re); return m ? m[1].replace(/<span class="m">.*?<\/span>/, "").replace(/<[^>]+>/g, "")
        .replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&") : ""; };
      const box = element("div");
      box.className = "box";
      const p = box.appendChild(element("p"));
      p.id = "pc-text";
      p.textContent = text(/<p class="text" id="pc-text">(.*?)<\/p>/);
      for (const name of ["no", "yes"]) {
        const b = element("button");
        b.className = name;
        b.textContent = text(new RegExp(`<button type="button" class="${name}">(.*?)</button>`));
        box.appendChild(b);
      }
      el.children = [box];
      el.firstChild = box;
    },
  });
  return el;
}
// ``inClick`` is true only while a click's listeners run (Safari's user gesture).
let inClick = false;
function click(el) { inClick = true; try { for (const fn of el.listeners.click || []) fn({ type: "click" }); } finally { inClick = false; } }

const script = {
  src: "https://push.example/widget.js",
  getAttribute: (name) => (name === "data-shop" ? scenario.shop || "pk_test" : null),
};
const ldNodes = (scenario.jsonld || []).map((text) => ({ textContent: text }));
const notifyNodes = (scenario.notify || []).map((attrs) => element("div", Object.assign({ "data-pushcart-notify": "" },
  ...Object.entries(attrs).map(([k, v]) => ({ ["data-" + k]: v })))));
const body = element("body");
const head = element("head");
const document = {
  currentScript: script,
  referrer: scenario.referrer || "",
  cookie: "",
  visibilityState: "visible",
  readyState: scenario.readyState || "complete",
  body,
  head,
  // scenario.manifest: the shop's page links a web app manifest
  querySelector: (sel) => (sel.indexOf("manifest") >= 0 ? (scenario.manifest ? element("link") : null) : script),
  querySelectorAll: (sel) => (sel.indexOf("ld+json") >= 0 ? ldNodes : sel === "[data-pushcart-notify]" ? notifyNodes : []),
  addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
  getElementById: (id) => body.children.find((c) => c.id === id) || null,
  createElement: (tag) => element(tag),
};

// Answers by URL: the shop's /cart.js (scenario.cartJs: a body, or {status, text}), the config
// (scenario.config), anything else 202 {}.
let cartCalls = 0;
function answer(url) {
  if (url === "/cart.js") {
    const carts = [].concat(scenario.cartJs === undefined ? [] : scenario.cartJs);
    const cart = carts[Math.min(cartCalls++, carts.length - 1)];
    if (cart && (cart.status || cart.text !== undefined)) {
      return { ok: (cart.status || 200) < 300, status: cart.status || 200,
        json: () => Promise.resolve().then(() => JSON.parse(cart.text)) };
    }
    return cart === undefined ? { ok: false, status: 404, json: () => Promise.reject(new Error("no JSON")) }
      : { ok: true, status: 200, json: () => Promise.resolve(JSON.parse(JSON.stringify(cart))) };
  }
  if (url.indexOf("/config") >= 0) return { ok: true, status: 200, json: () => Promise.resolve(scenario.config || {}) };
  if (url.endsWith("/subscriptions") && scenario.subscriptionsStatus) return { ok: false, status: scenario.subscriptionsStatus, json: () => Promise.resolve({}) };
  if (url.endsWith("/interests") && scenario.interestsStatus) return { ok: false, status: scenario.interestsStatus, json: () => Promise.resolve({}) };
  return { ok: true, status: 202, json: () => Promise.resolve({}) };
}

// scenario.userAgent / platform / maxTouchPoints / standalone (iOS's navigator.standalone) and
// scenario.displayMode (what matchMedia("(display-mode: ...)") matches) emulate Safari on iOS.
const navigator = {
  language: scenario.language || "de-DE",
  userAgent: scenario.userAgent || "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
  platform: scenario.platform || "Linux x86_64",
  maxTouchPoints: scenario.maxTouchPoints || 0,
  standalone: scenario.standalone,
  sendBeacon: (url, body) => { beacons.push({ url, body: JSON.parse(body) }); return true; },
};
const window = {
  document,
  navigator,
  location: { href: scenario.url || "https://shop.example/p/1?utm_source=x", pathname: "/p/1", protocol: "https:",
    search: new URL(scenario.url || "https://shop.example/p/1?utm_source=x").search },
  localStorage: scenario.noStorage
    ? { getItem() { throw new Error("blocked"); }, setItem() { throw new Error("blocked"); } }
    : { getItem: (k) => (k in storage ? storage[k] : null), setItem: (k, v) => { storage[k] = String(v); } },
  crypto: { getRandomValues: (a) => { for (let i = 0; i < a.length; i++) a[i] = Math.floor(Math.random() * 256); return a; } },
  fetch: scenario.fetchThrows
    ? () => { throw new Error("no network"); }
    : (url, init) => {
      sent.push({ url, method: init && init.method, credentials: init && init.credentials,
                  body: init && init.body ? JSON.parse(init.body) : null });
      return Promise.resolve(answer(url));
    },
  setTimeout: (fn, ms) => setTimeout(() => { try { fn(); } catch (e) { thrown.push(String(e)); } }, Math.min(ms, 5)),
  clearTimeout: (t) => clearTimeout(t),
  matchMedia: (q) => ({ matches: q === "(display-mode: " + (scenario.displayMode || "browser") + ")" }),
  addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
  Promise, URL, JSON, Math, Date, String, Number, Array, Uint8Array, RegExp, Error, Intl,
  pushcart: scenario.queue || undefined,
};
window.window = window;

// Push support (scenario.push: {permission, answer, subscribed, madeWith}): a worker registration
// whose pushManager hands out one subscription at a time; ``madeWith`` (base64url) is the VAPID key
// the existing subscription was made with (its ``options.applicationServerKey``). Unsubscribing
// and subscribing again gives a new endpoint; both are recorded in ``pushLog``.
const pushLog = [];
if (scenario.push) {
  const regs = {};
  const made = (endpoint, key) => {
    const sub = {
      endpoint,
      options: key ? { userVisibleOnly: true, applicationServerKey: key.buffer } : {},
      toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: "p", auth: "a" } }),
      unsubscribe: () => { pushLog.push(["unsubscribe", endpoint]); current = null; return Promise.resolve(true); },
    };
    return sub;
  };
  const fromB64 = (k) => new Uint8Array(Buffer.from(k.replace(/-/g, "+").replace(/_/g, "/"), "base64"));
  let count = 1;
  let current = scenario.push.subscribed
    ? made("https://push.example.net/send/1", scenario.push.madeWith ? fromB64(scenario.push.madeWith) : null) : null;
  const subscribe = (options) => {
    // As browsers do: the same key gives the existing subscription, another key an error
    const same = (a, b) => String(new Uint8Array(a)) === String(new Uint8Array(b));
    if (current && same(current.options.applicationServerKey || [], options.applicationServerKey)) return Promise.resolve(current);
    if (current) return Promise.reject(new Error("InvalidStateError: subscribed with another key"));
    current = made("https://push.example.net/send/" + (++count), new Uint8Array(options.applicationServerKey));
    pushLog.push(["subscribe", current.endpoint]);
    return Promise.resolve(current);
  };
  navigator.serviceWorker = {
    register: (url, options) => {
      registered.push(url);
      const scope = new URL(options.scope, window.location.href).href;
      regs[scope] = regs[scope] || { scope, active: {}, pushManager: {
        getSubscription: () => Promise.resolve(current),
        subscribe,
      } };
      return Promise.resolve(regs[scope]);
    },
    getRegistration: (scope) => Promise.resolve(regs[scope]),
    addEventListener() {},
    startMessages() {},
  };
  window.PushManager = function PushManager() {};
  window.Notification = {
    permission: scenario.push.permission || "granted",
    requestPermission: () => {
      pushLog.push(["requestPermission", inClick ? "in a click" : "outside a click"]);
      return Promise.resolve(window.Notification.permission = scenario.push.answer || "granted");
    },
  };
  window.isSecureContext = true;
  window.atob = (s) => Buffer.from(s, "base64").toString("binary");
  window.btoa = (s) => Buffer.from(s, "binary").toString("base64");
}

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
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  await wait(30);
  if (scenario.readyState === "loading") for (const fn of listeners.DOMContentLoaded || []) fn();
  // The page says its cart changed (scenario.cartEvents times).
  for (let i = 0; i < (scenario.cartEvents || 0); i++) {
    for (const fn of listeners["pushcart:cart"] || []) fn({ type: "pushcart:cart" });
    await wait(20);
  }
  if (scenario.clickNotify) for (const n of notifyNodes) for (const b of n.children) click(b);
  // scenario.clickSoftAsk: "yes" or "no", a click on that soft-ask button
  if (scenario.clickSoftAsk) for (const host of body.children.filter((c) => c.id === "pushcart-softask")) {
    click((host.shadowRoot || host).firstChild.querySelector("." + scenario.clickSoftAsk));
  }
  await wait(30);
  if (scenario.leave) for (const fn of listeners.pagehide || []) fn();
  await wait(30);
  const status = api && api.status ? await api.status() : null;
  const softask = body.children.filter((c) => c.id === "pushcart-softask").map((host) => {
    const root = host.shadowRoot || host;
    const part = (sel) => { const e = root.firstChild.querySelector(sel); return e ? e.textContent : null; };
    return { text: part("p"), no: part(".no"), yes: part(".yes"), html: root.innerHTML };
  });
  const buttons = notifyNodes.map((n) => n.children.map((b) => ({
    tag: b.tagName, type: b.type, className: b.className, text: b.textContent, disabled: !!b.disabled })));
  const scripts = head.children.filter((c) => c.tagName === "SCRIPT").map((c) => c.src);
  process.stdout.write(JSON.stringify({ sent, beacons, thrown, storage, status, softask, buttons, registered, pushLog, scripts,
                                        api: Object.keys(api || {}) }));
})();
