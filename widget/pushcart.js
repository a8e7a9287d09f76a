/*! Pushcart widget: <script src=".../widget.js" data-shop="KEY" async> */
(w => {
"use strict";
var d = w && w.document;
if (!d || (w.pushcart && w.pushcart.__pushcart)) return;
var nav = w.navigator, loc = w.location, el = d.currentScript || d.querySelector("script[data-shop][src*='widget.js']"),
  SHOP = el && el.getAttribute("data-shop");
if (!/^[\w-]{1,64}$/.test(SHOP || "")) return;
var BASE = el.src.replace(/\/widget\.js(\?.*)?$/, ""), API = BASE + "/v1/shops/" + SHOP,
  TYPES = "page_view product_view add_to_cart remove_from_cart checkout_started leave cart_update".split(" "),
  KINDS = ["back_in_stock", "price_drop"], queue = [], timer, left, err, cfg, views, vid, NO;

// Never throw into the page: entry points are safe(), promise chains end in a catch.
var P = v => Promise.resolve(v);
var log = e => { try { err = String(e); } catch (_) { err = "error"; } };
var no = e => (log(e), false);
var safe = (f, alt) => (...a) => { try { return f(...a); } catch (e) { log(e); return alt; } };

// Storage: localStorage, or a cookie where it is blocked
var get = k => {
  try { var v = w.localStorage.getItem("pushcart_" + k); if (v != null) return v; } catch (_) {}
  try { var m = d.cookie.match(`(^|; )pushcart_${k}=([^;]*)`); return m && decodeURIComponent(m[2]); } catch (_) {}
};
var set = (k, v) => {
  try { return w.localStorage.setItem("pushcart_" + k, v); } catch (_) {}
  try {
    d.cookie = `pushcart_${k}=${encodeURIComponent(v)}; path=/; max-age=31536000; SameSite=Lax${loc.protocol == "https:" ? "; Secure" : ""}`;
  } catch (_) {}
};
var rid = n => { var s = ""; w.crypto.getRandomValues(new Uint8Array(n)).forEach(b => s += (b & 31).toString(32)); return s; };

// Sending: events are batched, and go by beacon when the page is hidden
var call = (path, body, method) => P().then(() => w.fetch(API + path, body ? {method: method || "POST", credentials: "omit",
  keepalive: true, headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)} : {credentials: "omit"}))
  .then(r => { if (!r.ok) throw Error(path + " " + r.status); return body || r.json(); });
var flush = beacon => {
  w.clearTimeout(timer);
  timer = 0;
  while (queue.length) {
    var b = {visitor_id: vid, events: queue.splice(0, 50)};
    if (!(beacon && nav.sendBeacon && nav.sendBeacon(API + "/events", JSON.stringify(b)))) call("/events", b).catch(log);
  }
};
var enqueue = e => {
  e.id = rid(16);
  if (queue.push(e) > 49) flush(); else timer = timer || w.setTimeout(safe(flush), 1e3);
};

// Cleaning: the server refuses a whole batch for one bad field
var str = (v, n) => v == null ? undefined : String(v).trim().slice(0, n || 300) || undefined;
var href = v => { try { var u = new URL(v, loc.href); if (v && /^https?:$/.test(u.protocol)) return u.href; } catch (_) {} };
var money = v => {
  if (typeof v == "number" && v >= 0) v = (Math.round(v * 100) / 100).toFixed(2);
  return /^\d{1,12}(\.\d\d?)?$/.test(v = str(v)) ? v : undefined;
};
var count = v => (v = Math.floor(v)) >= 0 && v <= 1e4 ? v : undefined;
var item = p => {
  var o = p && typeof p == "object" && {id: str(p.id, 128), title: str(p.title), price: money(p.price), quantity: count(p.quantity),
    currency: /^[A-Z]{3}$/.test(p.currency) ? p.currency : undefined, url: href(p.url), image: href(p.image)};
  return o && o.id ? o : undefined;
};
var product = p => (p = item(p)) && p.title ? p : undefined;
var cart = c => { // its fields cleaned as an item's: token as id, total as price, item_count as quantity
  var o = item(c && {id: c.token, price: c.total, currency: c.currency, quantity: c.item_count}),
    its = o && (Array.isArray(c.items) ? c.items.slice(0, 100) : []).map(item).filter(Boolean);
  return o && o.price && o.currency && o.quantity != null ? {token: o.id, total: o.price, currency: o.currency,
    item_count: o.quantity, checkout_url: href(c.checkout_url), items: its.length ? its : undefined} : undefined;
};
// The first schema.org Product in JSON-LD (in arrays and @graph)
var ld = (n, k) => n && typeof n == "object" && k < 5 && (Array.isArray(n) ? n.map(x => ld(x, k + 1)).find(x => x)
  : [].concat(n["@type"]).includes("Product") ? n : ld(n["@graph"], k + 1));
var pageProduct = () => {
  for (var n of d.querySelectorAll('script[type="application/ld+json"]')) {
    var p, o, img;
    try { p = ld(JSON.parse(n.textContent), 0); } catch (_) {}
    if (p) {
      o = [].concat(p.offers)[0] || {};
      img = [].concat(p.image)[0];
      return product({id: p.sku || p.productID || p.mpn || p["@id"] || p.url || loc.pathname, title: p.name,
        price: o.price !== undefined ? o.price : o.lowPrice, currency: o.priceCurrency, url: p.url || loc.href,
        image: img && typeof img == "object" ? img.url || img.contentUrl : img});
    }
  }
};

var track = (type, x) => {
  x = x || {};
  if (TYPES.includes(type)) enqueue({type, url: href(x.url || loc.href), product: product(x.product), cart: cart(x.cart),
    referrer: type == "page_view" ? href(d.referrer) : undefined});
};
var identify = x => enqueue({type: "identify", email: str((x = x || {}).email, 320), customer_id: str(x.customer_id, 128),
  first_name: str(x.first_name, 100)});
var leave = () => { if (!left) { left = 1; enqueue({type: "leave", url: href(loc.href)}); flush(1); } };

// Shopify: the shop's /cart.js (amounts in cents), sent when its token, count or total changed
var shopify = () => config().then(c => c.platform == "shopify" &&
  w.fetch("/cart.js", {credentials: "same-origin"}).then(r => r.ok && r.json())).then(s => {
  var c = s && s.token && cart(Object.assign({}, s, {total: s.total_price / 100,
      items: s.items.map(i => Object.assign({}, i, {id: i.variant_id, price: i.price / 100}))})),
    k = c && [c.token, c.item_count, c.total].join();
  if (k && k != get("cart")) { set("cart", k); track("cart_update", {cart: c}); }
}).catch(() => {});

// Push
var ok = () => "serviceWorker" in nav && "PushManager" in w && "Notification" in w && w.isSecureContext !== false;
var perm = () => w.Notification.permission;
// iOS/iPadOS (an iPad says it is a Mac) shows web push only in a Home Screen app, and only a
// site with a manifest can be one: outside it, Safari has no PushManager and gets coaching
var coach = () => !ok() && (/iP(hone|ad|od)/.test(nav.userAgent) || nav.platform == "MacIntel" && nav.maxTouchPoints > 1)
  && nav.standalone !== true && !(w.matchMedia && w.matchMedia("(display-mode: standalone)").matches)
  && !!d.querySelector("link[rel=manifest]");
var config = () => {
  if (!cfg) (cfg = call(`/config?locale=${encodeURIComponent(nav.language)}&page=${encodeURIComponent(loc.pathname + (loc.search.match(/[?&]pushcart_preview=[^&]*/) || ""))}`)).catch(e => { cfg = 0; log(e); });
  return cfg;
};
var sw = c => { // our script URL, and a scope of our own: never the shop's own worker
  var p = String(c.sw_path || "");
  if (!/^\/[\w.~\/-]+\.js$/.test(p)) p = "/pushcart-sw.js";
  return [p + "?shop=" + SHOP + "&v=" + vid, new URL(p.slice(0, p.lastIndexOf("/") + 1) + "pushcart/", loc.href).href];
};
var mine = () => config().then(c => {
  var s = sw(c)[1];
  return nav.serviceWorker.getRegistration(s).then(r => r && r.scope == s ? r.pushManager.getSubscription() : null);
});
var active = r => r.active ? r : new Promise((yes, nope) => {
  var x = r.installing || r.waiting;
  if (!x) throw Error("no worker");
  x.addEventListener("statechange", () => x.state == "activated" ? yes(r) : x.state == "redundant" && nope(Error("worker redundant")));
});
var key = c => Uint8Array.from(w.atob(c.vapid_public_key.replace(/-/g, "+").replace(/_/g, "/")), ch => ch.charCodeAt(0));
// Made with another VAPID key than the shop's current one (it rotated), where the browser tells
var made = s => s.options && s.options.applicationServerKey;
var stale = (s, c) => !!made(s) && String(new Uint8Array(made(s))) != String(key(c));
var send = (s, c) => {
  var b = {visitor_id: vid, subscription: s.toJSON(), locale: nav.language,
    application_server_key: made(s) ? c.vapid_public_key : undefined, replaces: get("replaces") || undefined};
  try { b.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (_) {}
  return call("/subscriptions", b).then(() => set("replaces", ""));
};
var subscribe = () => {
  var c;
  err = null;
  if (!ok()) return NO;
  set("optout", "");
  // Asked in the caller's own task: Safari grants it only from a user gesture (the click)
  var asked = perm() == "granted" || w.Notification.requestPermission();
  return config().then(x => (c = x, asked)).then(p => {
    if (p !== true && p != "granted") throw Error("permission " + p);
    var u = sw(c);
    return nav.serviceWorker.register(u[0], {scope: u[1]});
  }).then(active).then(r => r.pushManager.getSubscription().then(s => s && !stale(s, c) ? s :
    // The old endpoint is kept until the server has the new one, which then replaces it
    P(s && (set("replaces", s.endpoint), s.unsubscribe())).then(() => Promise.race([
      r.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: key(c)}),
      // Without a reachable push service this may never settle
      new Promise((_, nope) => w.setTimeout(() => nope(Error("push subscribe timed out (no push service?)")), 1e4))
    ])))).then(s => send(s, c)).then(() => true, no);
};
var unsubscribe = () => {
  set("optout", "1");
  return ok() ? mine().then(s => !s || s.unsubscribe().then(() => call("/subscriptions", {endpoint: s.endpoint}, "DELETE"))
    .then(() => true)).catch(no) : NO;
};
var status = () => {
  var o = {visitor_id: vid, permission: "unsupported", subscribed: false};
  return P().then(() => { if (ok()) { o.permission = perm(); return mine(); } })
    .then(s => { o.subscribed = !!s; }, log).then(() => { if (err) o.error = err; return o; });
};
// pushsubscriptionchange rarely fires: re-send (or recreate) the subscription on each page load,
// and re-subscribe in the background (permission is granted) when the shop's key rotated
var resync = () => {
  if (ok() && perm() == "granted" && get("optout") != "1") mine().then(s => config().then(c =>
    s && !stale(s, c) ? send(s, c) : subscribe())).catch(log);
};

// "Notify me" buttons: subscribe, then record the interest
var notifyMe = (product, variant, kinds) => {
  var k = String(kinds || "").replace(/\s/g, "").split(","),
    b = {visitor_id: vid, product_id: str(product, 128), variant_id: str(variant, 128), kinds: KINDS.filter(x => k.includes(x))};
  if (!b.kinds.length) b.kinds = KINDS;
  return b.product_id ? subscribe().then(yes => { if (!yes) throw err || "not subscribed"; return call("/interests", b); })
    .then(() => true, no) : P(no("no product id"));
};
var buttons = () => d.querySelectorAll("[data-pushcart-notify]").forEach(n => {
  var a = k => n.getAttribute("data-" + k), b = d.createElement("button");
  if (!a("product") || n.querySelector(".pushcart-notify")) return;
  b.type = "button";
  b.className = "pushcart-notify";
  b.textContent = a("label") || "Notify me";
  b.addEventListener("click", safe(() => {
    b.disabled = true;
    notifyMe(a("product"), a("variant"), a("kinds")).then(yes => yes ? b.textContent = "We'll let you know" : b.disabled = false);
  }));
  n.appendChild(b);
});

var dismiss = p => set("dismissed_until", Date.now() + (Math.max(0, p.dismiss_days) || 0) * 864e5);
// The soft-ask: markup and style come rendered from the shop's design (config.prompt.html, .css);
// here they are only put in a shadow root and wired (iOS coaching replaces the text and drops yes)
var ask = (p, k) => {
  if (d.getElementById("pushcart-softask") || !p.html) return;
  var host = d.createElement("div"), root = host.attachShadow ? host.attachShadow({mode: "open"}) : host, box, s, from,
    // Closed from inside, focus goes back to where it came from (never taken on showing)
    gone = () => { var f = root.activeElement; host.remove(); if (f && from && from.focus) from.focus(); },
    close = e => { if (!e.key || e.key == "Escape") { dismiss(p); gone(); } };
  host.id = "pushcart-softask";
  root.innerHTML = p.html;
  box = root.firstChild;
  s = box.querySelector(".no");
  if (k) { box.querySelector("#pc-text").textContent = "Add this shop to your Home Screen: Share, then Add to Home Screen, to get notifications"; s.textContent = "OK"; }
  s.addEventListener("click", safe(close));
  s = box.querySelector(".yes");
  k ? s.remove() : s.addEventListener("click", safe(() => { gone(); subscribe().then(yes => yes || dismiss(p)); }));
  box.addEventListener("keydown", safe(close));
  box.addEventListener("focusin", e => { from = from || e.relatedTarget; });
  // A constructed sheet passes a CSP without 'unsafe-inline'; <style> is the fallback
  try { s = new w.CSSStyleSheet(); s.replaceSync(p.css); root.adoptedStyleSheets = [s]; } catch (_) {
    s = d.createElement("style");
    s.textContent = p.css;
    root.appendChild(s);
  }
  d.body.appendChild(host);
};
var maybeAsk = () => {
  var k = coach();
  if ((k || ok() && perm() == "default") && get("optout") != "1" && !(get("dismissed_until") > Date.now())) config().then(c => {
    var p = c.prompt || {}, v = Number(p.after_pageviews), s = Number(p.after_seconds) || 0;
    if (isNaN(v)) v = 2;
    if (views >= v || s > 0) w.setTimeout(safe(() => ask(p, k)), views >= v ? 0 : s * 1e3);
  }).catch(log);
};

try {
  NO = P(false);
  var pending = Array.isArray(w.pushcart) ? w.pushcart : [], pp, api = w.pushcart = {
    __pushcart: true, track: safe(track), identify: safe(identify), status,
    subscribe: safe(subscribe, NO), unsubscribe: safe(unsubscribe, NO), notifyMe: safe(notifyMe, NO),
    push: safe(c => { if (c[0] != "push" && typeof api[c[0]] == "function") return api[c[0]](...c.slice(1)); })
  };
  if (!/^[\w-]{8,64}$/.test(vid = get("vid") || "")) set("vid", vid = rid(22));
  set("pageviews", views = (+get("pageviews") || 0) + 1);
  track("page_view");
  if ((pp = pageProduct())) track("product_view", {product: pp});
  pending.forEach(api.push);
  w.addEventListener("pagehide", safe(leave));
  d.addEventListener("visibilitychange", safe(() => d.visibilityState == "hidden" ? leave() : left = 0));
  d.addEventListener("pushcart:cart", safe(shopify));
  if (ok()) {
    // sw.js asks an open tab to follow a notification's click link
    nav.serviceWorker.addEventListener("message", safe(e => {
      var m = e.data || {};
      if (m.pushcart == "open" && typeof m.url == "string" && m.url.indexOf(BASE + "/c/") == 0) {
        if (e.ports && e.ports[0]) e.ports[0].postMessage("ok");
        loc.href = m.url;
      }
    }));
    if (nav.serviceWorker.startMessages) nav.serviceWorker.startMessages();
  }
  resync();
  maybeAsk();
  shopify();
  // On-site messages: their script only where the shop has one that may show on this page
  config().then(c => { if (c.onsite) d.head.appendChild(d.createElement("script")).src = c.onsite; }).catch(log);
  if (d.readyState == "loading") d.addEventListener("DOMContentLoaded", safe(buttons)); else buttons();
} catch (e) { log(e); }
})(typeof window == "object" && window);
