/*! Pushcart widget: <script src="PUBLIC_URL/widget.js" data-shop="SHOP_PUBLIC_KEY" async></script>
 * No dependencies. Every entry point is wrapped: nothing this script does may throw into the page.
 */
(function (win, doc) {
  "use strict";
  if (!win || !doc || (win.pushcart && win.pushcart.__pushcart)) return;

  var NS = "pushcart_";
  var FLUSH_MS = 1000;
  var MAX_BATCH = 50;
  var SUBSCRIBE_TIMEOUT_MS = 10000;
  var script = doc.currentScript || doc.querySelector("script[data-shop][src*='widget.js']");
  var SHOP = script && script.getAttribute("data-shop");
  if (!SHOP || !/^[A-Za-z0-9_-]{1,64}$/.test(SHOP)) return;
  var BASE = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var API = BASE + "/v1/shops/" + encodeURIComponent(SHOP);

  var queue = [];
  var timer = null;
  var left = false;
  var lastError = null;
  var configPromise = null;
  var pageViews = 0;

  function noop() {}
  function log(e) { try { lastError = String((e && (e.name ? e.name + ": " + e.message : e)) || e); } catch (_) { /* never */ } }

  // ---- storage: localStorage, with a first-party cookie when it is blocked -------------------
  function getItem(key) {
    try { var v = win.localStorage.getItem(NS + key); if (v !== null) return v; } catch (_) { /* blocked */ }
    try {
      var m = doc.cookie.match(new RegExp("(?:^|; )" + NS + key + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    } catch (_) { return null; }
  }
  function setItem(key, value) {
    try { win.localStorage.setItem(NS + key, value); return; } catch (_) { /* blocked */ }
    try {
      doc.cookie = NS + key + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax" +
        (win.location.protocol === "https:" ? "; Secure" : "");
    } catch (_) { /* no storage at all: the value lives for this page only */ }
  }
  function randomId(bytes) {
    var a = new Uint8Array(bytes), s = "", i;
    try { win.crypto.getRandomValues(a); } catch (_) { for (i = 0; i < bytes; i++) a[i] = Math.floor(Math.random() * 256); }
    for (i = 0; i < bytes; i++) s += "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-".charAt(a[i] & 63);
    return s;
  }
  var visitorId = getItem("vid");
  if (!visitorId || !/^[A-Za-z0-9_-]{8,64}$/.test(visitorId)) { visitorId = randomId(22); setItem("vid", visitorId); }

  // ---- sending ------------------------------------------------------------------------------
  function post(path, body, method) {
    return win.fetch(API + path, {
      method: method || "POST", mode: "cors", credentials: "omit", keepalive: true,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok && r.status !== 204) throw new Error("Pushcart API answered " + r.status);
      return r.status === 204 ? null : r.json();
    });
  }
  function flush(beacon) {
    if (timer) { win.clearTimeout(timer); timer = null; }
    while (queue.length) {
      var body = { visitor_id: visitorId, events: queue.splice(0, MAX_BATCH) };
      // A beacon survives the page closing; text/plain keeps it a simple (preflight-free) request.
      if (beacon && win.navigator.sendBeacon && win.navigator.sendBeacon(API + "/events", JSON.stringify(body))) continue;
      post("/events", body).catch(log);
    }
  }
  function enqueue(event) {
    event.id = randomId(16);
    queue.push(event);
    if (queue.length >= MAX_BATCH) flush(false);
    else if (!timer) timer = win.setTimeout(function () { try { flush(false); } catch (e) { log(e); } }, FLUSH_MS);
  }

  // ---- reading the page ---------------------------------------------------------------------
  function httpUrl(value) {
    try {
      var u = new URL(String(value), win.location.href);
      return /^https?:$/.test(u.protocol) ? u.href : undefined;
    } catch (_) { return undefined; }
  }
  function str(value, max) {
    if (value === null || value === undefined) return undefined;
    var s = String(value).trim();
    return s ? s.slice(0, max || 300) : undefined;
  }
  function first(value) { return Array.isArray(value) ? value[0] : value; }
  function isProduct(node) {
    var t = node && node["@type"];
    return t === "Product" || (Array.isArray(t) && t.indexOf("Product") >= 0);
  }
  function findProduct(node, depth) {
    if (!node || typeof node !== "object" || depth > 4) return null;
    if (Array.isArray(node)) {
      for (var i = 0; i < node.length; i++) { var hit = findProduct(node[i], depth + 1); if (hit) return hit; }
      return null;
    }
    if (isProduct(node)) return node;
    return findProduct(node["@graph"], depth + 1);
  }
  function productFromLd(p) {
    var offer = first(p.offers) || {};
    var price = offer.price !== undefined ? offer.price : offer.lowPrice;
    var image = first(p.image);
    if (image && typeof image === "object") image = image.url || image.contentUrl;
    return cleanItem({ id: p.sku || p.productID || p.mpn || p["@id"] || p.url || win.location.pathname, title: p.name,
      price: price, currency: offer.priceCurrency, url: p.url || win.location.href, image: image }, true) || null;
  }
  function pageProduct() {
    var nodes = doc.querySelectorAll('script[type="application/ld+json"]');
    for (var i = 0; i < nodes.length; i++) {
      try { var p = findProduct(JSON.parse(nodes[i].textContent), 0); if (p) return productFromLd(p); } catch (_) { /* bad JSON-LD */ }
    }
    return null;
  }

  // The server refuses a whole batch with one bad field, so merchant data is cleaned here.
  function money(value) {
    if (typeof value === "number" && isFinite(value) && value >= 0) return (Math.round(value * 100) / 100).toFixed(2);
    var s = String(value === undefined || value === null ? "" : value).trim();
    return /^\d{1,12}(\.\d{1,2})?$/.test(s) ? s : undefined;
  }
  function currency(value) { return /^[A-Z]{3}$/.test(String(value || "")) ? value : undefined; }
  function count(value) { var n = Math.floor(Number(value)); return n >= 0 && n <= 10000 ? n : undefined; }
  function cleanItem(p, needTitle) {
    if (!p || typeof p !== "object") return undefined;
    var out = { id: str(p.id, 128), title: str(p.title, 300), price: money(p.price), currency: currency(p.currency),
      url: p.url ? httpUrl(p.url) : undefined, image: p.image ? httpUrl(p.image) : undefined };
    if (p.quantity !== undefined) out.quantity = count(p.quantity);
    return out.id && (out.title || !needTitle) ? out : undefined;
  }
  function cleanCart(c) {
    if (!c || typeof c !== "object") return undefined;
    var items = [], list = Array.isArray(c.items) ? c.items.slice(0, 100) : [];
    for (var i = 0; i < list.length; i++) { var it = cleanItem(list[i], false); if (it) items.push(it); }
    var out = { token: str(c.token, 128), total: money(c.total), currency: currency(c.currency), item_count: count(c.item_count),
      checkout_url: c.checkout_url ? httpUrl(c.checkout_url) : undefined, items: items.length ? items : undefined };
    return out.token && out.total && out.currency && out.item_count !== undefined ? out : undefined;
  }

  // ---- the public API -------------------------------------------------------------------------
  var TYPES = { page_view: 1, product_view: 1, add_to_cart: 1, remove_from_cart: 1, checkout_started: 1, leave: 1 };

  function track(type, data) {
    if (!TYPES[type]) return;
    data = data || {};
    var event = { type: type, url: httpUrl(data.url || win.location.href) };
    event.product = cleanItem(data.product, true);
    event.cart = cleanCart(data.cart);
    if (type === "page_view") event.referrer = httpUrl(doc.referrer);
    enqueue(event);
  }
  function identify(data) {
    data = data || {};
    enqueue({ type: "identify", email: str(data.email, 320), customer_id: str(data.customer_id, 128),
      first_name: str(data.first_name, 100) });
  }

  function supported() {
    return "serviceWorker" in win.navigator && "PushManager" in win && "Notification" in win && win.isSecureContext !== false;
  }
  function getConfig() {
    if (!configPromise) {
      configPromise = win.fetch(API + "/config", { mode: "cors", credentials: "omit" }).then(function (r) {
        if (!r.ok) throw new Error("Pushcart config answered " + r.status);
        return r.json();
      });
      configPromise.catch(function (e) { configPromise = null; log(e); });
    }
    return configPromise;
  }
  function swUrls(config) {
    var path = String(config.sw_path || "/pushcart-sw.js");
    if (!/^\/[A-Za-z0-9._~\/-]+\.js$/.test(path)) path = "/pushcart-sw.js";
    // A narrow scope of our own, so we never take over (or fight) the shop's PWA worker.
    var scope = path.slice(0, path.lastIndexOf("/") + 1) + "pushcart/";
    return { script: path + "?shop=" + encodeURIComponent(SHOP) + "&v=" + encodeURIComponent(visitorId), scope: scope };
  }
  function b64ToBytes(b64) {
    var raw = win.atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function activeWorker(reg) {
    if (reg.active) return Promise.resolve(reg);
    return new Promise(function (resolve, reject) {
      var worker = reg.installing || reg.waiting;
      if (!worker) { reject(new Error("service worker did not install")); return; }
      worker.addEventListener("statechange", function () {
        if (worker.state === "activated") resolve(reg);
        else if (worker.state === "redundant") reject(new Error("service worker became redundant"));
      });
    });
  }
  function ourRegistration(config) {
    var urls = swUrls(config), scope = new URL(urls.scope, win.location.href).href;
    return win.navigator.serviceWorker.getRegistration(scope).then(function (reg) {
      return reg && reg.scope === scope ? reg : null;
    });
  }
  function register(config) {
    var urls = swUrls(config);
    return win.navigator.serviceWorker.register(urls.script, { scope: urls.scope }).then(activeWorker);
  }
  function send(sub) {
    var body = { visitor_id: visitorId, subscription: sub.toJSON() };
    try { body.locale = win.navigator.language; body.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (_) { /* optional */ }
    return post("/subscriptions", body);
  }
  // A browser without a reachable push service may leave subscribe() pending for ever; give up
  // after a while (status() reports it). If it succeeds later, the next page view's re-sync posts it.
  function within(ms, promise, message) {
    return new Promise(function (resolve, reject) {
      var t = win.setTimeout(function () { reject(new Error(message)); }, ms);
      promise.then(function (v) { win.clearTimeout(t); resolve(v); }, function (e) { win.clearTimeout(t); reject(e); });
    });
  }
  function subscribe() {
    lastError = null;
    if (!supported()) return Promise.resolve(false);
    setItem("optout", "");
    var config;
    return getConfig().then(function (c) {
      config = c;
      return win.Notification.permission === "granted" ? "granted" : win.Notification.requestPermission();
    }).then(function (permission) {
      if (permission !== "granted") throw new Error("notification permission " + permission);
      return register(config);
    }).then(function (reg) {
      return reg.pushManager.getSubscription().then(function (existing) {
        return existing || within(SUBSCRIBE_TIMEOUT_MS, reg.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: b64ToBytes(config.vapid_public_key)
        }), "pushManager.subscribe did not answer (is a push service reachable?)");
      });
    }).then(send).then(function () { return true; }, function (e) { log(e); return false; });
  }
  function unsubscribe() {
    setItem("optout", "1");
    if (!supported()) return Promise.resolve(false);
    return getConfig().then(ourRegistration).then(function (reg) {
      return reg && reg.pushManager.getSubscription();
    }).then(function (sub) {
      if (!sub) return true;
      var endpoint = sub.endpoint;
      return sub.unsubscribe().then(function () { return post("/subscriptions", { endpoint: endpoint }, "DELETE"); })
        .then(function () { return true; });
    }).catch(function (e) { log(e); return false; });
  }
  function status() {
    var out = { visitor_id: visitorId, permission: "unsupported", subscribed: false };
    if (lastError) out.error = lastError;
    if (!supported()) return Promise.resolve(out);
    out.permission = win.Notification.permission;
    return getConfig().then(ourRegistration).then(function (reg) {
      return reg && reg.pushManager.getSubscription();
    }).then(function (sub) { out.subscribed = !!sub; if (lastError) out.error = lastError; return out; },
      function (e) { log(e); out.error = lastError; return out; });
  }
  // Browsers often never fire pushsubscriptionchange: re-send the subscription on every page load
  // (the server upserts by endpoint), and recreate it when it vanished but permission stands.
  function resync() {
    if (!supported() || win.Notification.permission !== "granted" || getItem("optout") === "1") return;
    getConfig().then(function (config) {
      return ourRegistration(config).then(function (reg) {
        return reg ? reg.pushManager.getSubscription() : null;
      }).then(function (sub) { return sub ? send(sub) : subscribe(); });
    }).catch(log);
  }

  // ---- the soft-ask ---------------------------------------------------------------------------
  function textColor(hex) {
    var n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    return (0.299 * r + 0.587 * g + 0.114 * b) > 160 ? "#111" : "#fff";
  }
  function dismiss(days) {
    setItem("dismissed_until", String(Date.now() + Math.max(0, Number(days) || 0) * 86400000));
  }
  function showPrompt(prompt) {
    if (doc.getElementById("pushcart-softask")) return;
    var color = /^#[0-9a-fA-F]{6}$/.test(prompt.color || "") ? prompt.color : "#1f6feb";
    var host = doc.createElement("div");
    host.id = "pushcart-softask";
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var css =
      ".box{position:fixed;z-index:2147483000;left:16px;bottom:16px;max-width:340px;box-sizing:border-box;" +
      "padding:16px 16px 14px;background:#fff;color:#1b1f24;border-radius:12px;border-top:4px solid " + color + ";" +
      "box-shadow:0 8px 28px rgba(0,0,0,.22);font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
      ".row{display:flex;gap:10px;align-items:flex-start}.bell{flex:none;width:24px;height:24px;fill:" + color + "}" +
      "p{margin:0 0 12px}.btns{display:flex;gap:8px;justify-content:flex-end}" +
      "button{font:inherit;font-weight:600;border-radius:8px;padding:8px 14px;cursor:pointer;border:1px solid " + color + "}" +
      ".yes{background:" + color + ";color:" + textColor(color) + "}.no{background:#fff;color:#1b1f24;border-color:#c9ced6}" +
      "button:focus-visible{outline:3px solid #111;outline-offset:2px}" +
      "@media (max-width:480px){.box{left:8px;right:8px;bottom:8px;max-width:none}}";
    var box = doc.createElement("div");
    box.className = "box";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "false");
    box.setAttribute("aria-labelledby", "pc-text");
    box.innerHTML = '<div class="row"><svg class="bell" width="24" height="24" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1z"/></svg>' +
      '<p id="pc-text"></p></div><div class="btns"><button type="button" class="no">Not now</button>' +
      '<button type="button" class="yes">Yes, notify me</button></div>';
    box.querySelector("p").textContent = String(prompt.text || "Get notified about your cart and orders?");
    // A constructed stylesheet is CSSOM, which a shop's CSP (style-src without 'unsafe-inline') allows;
    // a <style> element is the fallback for browsers without adoptedStyleSheets.
    try {
      var sheet = new win.CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (_) {
      var style = doc.createElement("style");
      style.textContent = css;
      root.appendChild(style);
    }
    root.appendChild(box);
    function close() { if (host.parentNode) host.parentNode.removeChild(host); }
    box.querySelector(".yes").addEventListener("click", function () {
      try { close(); subscribe().then(function (ok) { if (!ok) dismiss(prompt.dismiss_days); }); } catch (e) { log(e); }
    });
    box.querySelector(".no").addEventListener("click", function () { try { dismiss(prompt.dismiss_days); close(); } catch (e) { log(e); } });
    box.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { dismiss(prompt.dismiss_days); close(); } });
    doc.body.appendChild(host);
  }
  function maybePrompt() {
    if (!supported() || win.Notification.permission !== "default" || getItem("optout") === "1") return;
    if (Number(getItem("dismissed_until") || 0) > Date.now()) return;
    getConfig().then(function (config) {
      var p = config.prompt || {};
      var views = Number(p.after_pageviews), secs = Number(p.after_seconds) || 0;
      if (isNaN(views)) views = 2;
      // Shown from the N-th page view on, or after N seconds on a page when after_seconds > 0.
      if (pageViews >= views) win.setTimeout(function () { try { showPrompt(p); } catch (e) { log(e); } }, 0);
      else if (secs > 0) win.setTimeout(function () { try { showPrompt(p); } catch (e) { log(e); } }, secs * 1000);
    }).catch(log);
  }

  // ---- the queue of calls made before the script loaded ----------------------------------------
  var api = {
    __pushcart: true,
    track: function (type, data) { try { track(type, data); } catch (e) { log(e); } },
    identify: function (data) { try { identify(data); } catch (e) { log(e); } },
    subscribe: function () { try { return subscribe(); } catch (e) { log(e); return Promise.resolve(false); } },
    unsubscribe: function () { try { return unsubscribe(); } catch (e) { log(e); return Promise.resolve(false); } },
    status: function () {
      try { return status(); } catch (e) { log(e); return Promise.resolve({ visitor_id: visitorId, permission: "unsupported", subscribed: false, error: lastError }); }
    },
    push: function (call) {
      try {
        if (call && typeof api[call[0]] === "function" && call[0] !== "push") return api[call[0]].apply(api, call.slice(1));
      } catch (e) { log(e); }
    }
  };

  function onHidden() {
    if (left) return;
    left = true;
    queue.push({ type: "leave", id: randomId(16), url: httpUrl(win.location.href) });
    flush(true);
  }

  try {
    var pending = Array.isArray(win.pushcart) ? win.pushcart : [];
    win.pushcart = api;
    pageViews = Number(getItem("pageviews") || 0) + 1;
    setItem("pageviews", String(pageViews));
    track("page_view");
    var product = pageProduct();
    if (product) track("product_view", { product: product });
    for (var i = 0; i < pending.length; i++) api.push(pending[i]);
    win.addEventListener("pagehide", function () { try { onHidden(); } catch (e) { log(e); } });
    doc.addEventListener("visibilitychange", function () {
      try { if (doc.visibilityState === "hidden") onHidden(); else left = false; } catch (e) { log(e); }
    });
    if (supported()) {
      // The worker asks an open tab to follow a notification's click link (see sw.js).
      win.navigator.serviceWorker.addEventListener("message", function (ev) {
        try {
          var d = ev.data || {};
          if (d.pushcart !== "open" || typeof d.url !== "string" || d.url.indexOf(BASE + "/c/") !== 0) return;
          if (ev.ports && ev.ports[0]) ev.ports[0].postMessage("ok");
          win.location.href = d.url;
        } catch (e) { log(e); }
      });
      win.navigator.serviceWorker.startMessages && win.navigator.serviceWorker.startMessages();
    }
    resync();
    maybePrompt();
  } catch (e) { log(e); }
})(typeof window !== "undefined" ? window : null, typeof document !== "undefined" ? document : null);
