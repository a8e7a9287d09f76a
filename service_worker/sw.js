/*! Pushcart service worker. The shop serves one file on its own origin (default /pushcart-sw.js):
 *     importScripts("PUBLIC_URL/sw.js");
 * The widget registers that file as "/pushcart-sw.js?shop=SHOP_PUBLIC_KEY&v=VISITOR_ID" with the
 * narrow scope "/pushcart/", so this worker never controls the shop's pages. The shop key and
 * visitor id come from the registration URL (self.location); Pushcart's base URL is written
 * into this file when it is served.
 */
(function () {
  "use strict";
  var BASE = "__PUSHCART_PUBLIC_URL__";
  var params = new URL(self.location.href).searchParams;
  var SHOP = params.get("shop") || "";
  var VISITOR = params.get("v") || "";
  var API = BASE + "/v1/shops/" + encodeURIComponent(SHOP);
  var GENERIC = { title: "New notification", body: "", url: self.location.origin + "/" };

  function safeUrl(value, fallback) {
    if (typeof value !== "string" || !value) return fallback;
    try {
      var u = new URL(String(value), BASE + "/");
      return /^https?:$/.test(u.protocol) ? u.href : fallback;
    } catch (_) { return fallback; }
  }
  function text(value, max) {
    return typeof value === "string" ? value.slice(0, max) : "";
  }

  // A push must always show something: browsers penalise (and may revoke) pushes that show nothing.
  // Two forms arrive: today's flat payload, and (to Apple's push service) a Declarative Web Push
  // message, {"web_push": 8030, "notification": {title, body, navigate, ...}, push_id, kind, url},
  // which Safari 18.4+ shows itself and an older Safari hands to this worker.
  function notificationFrom(event) {
    var payload = null;
    try { payload = event.data ? event.data.json() : null; } catch (_) { payload = null; }
    var shown = payload && typeof payload === "object" && !Array.isArray(payload) ? payload : null;
    if (shown && shown.web_push === 8030) {
      shown = shown.notification && typeof shown.notification === "object" ? shown.notification : null;
    }
    if (!shown || !text(shown.title, 200)) {
      return { title: GENERIC.title, options: { body: GENERIC.body, data: { url: GENERIC.url } } };
    }
    var url = safeUrl(shown.navigate || payload.url, GENERIC.url);
    var options = { body: text(shown.body, 500), data: { url: url, push_id: payload.push_id, kind: text(payload.kind, 32), actions: {} } };
    if (shown.icon) { var icon = safeUrl(shown.icon, ""); if (icon) options.icon = icon; }
    if (shown.image) { var image = safeUrl(shown.image, ""); if (image) options.image = image; }
    if (shown.tag) { options.tag = text(shown.tag, 64); options.renotify = true; }
    if (shown.lang) options.lang = text(shown.lang, 35);
    if (shown.dir === "ltr" || shown.dir === "rtl") options.dir = shown.dir;
    if (shown.silent === true) options.silent = true;
    if (Array.isArray(shown.actions)) {
      options.actions = [];
      shown.actions.slice(0, 2).forEach(function (a) {
        if (!a || !text(a.action, 64) || !text(a.title, 64)) return;
        options.actions.push({ action: text(a.action, 64), title: text(a.title, 64) });
        options.data.actions[a.action] = safeUrl(a.navigate || a.url, url);
      });
    }
    return { title: text(shown.title, 200), options: options };
  }

  self.addEventListener("install", function (event) {
    event.waitUntil(self.skipWaiting());
  });

  self.addEventListener("push", function (event) {
    var n;
    try { n = notificationFrom(event); } catch (_) { n = { title: GENERIC.title, options: { data: { url: GENERIC.url } } }; }
    event.waitUntil(self.registration.showNotification(n.title, n.options).catch(function () {
      return self.registration.showNotification(GENERIC.title, { data: { url: GENERIC.url } });
    }));
  });

  // Ask an open tab of the shop (where the widget runs) to follow the link; it answers "ok".
  function askTab(client, url) {
    return new Promise(function (resolve) {
      var channel = new MessageChannel();
      var timer = setTimeout(function () { resolve(false); }, 1000);
      channel.port1.onmessage = function () { clearTimeout(timer); resolve(true); };
      client.postMessage({ pushcart: "open", url: url }, [channel.port2]);
    });
  }

  self.addEventListener("notificationclick", function (event) {
    event.notification.close();
    var data = event.notification.data || {};
    var url = (event.action && data.actions && data.actions[event.action]) || data.url || GENERIC.url;
    event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (clients) {
      var tab = clients.filter(function (c) { return new URL(c.url).origin === self.location.origin; })
        .sort(function (a, b) { return (b.focused ? 1 : 0) - (a.focused ? 1 : 0); })[0];
      if (!tab) return self.clients.openWindow(url);
      return tab.focus().then(function () { return askTab(tab, url); }).then(function (done) {
        return done ? null : self.clients.openWindow(url);
      });
    }).catch(function () { return self.clients.openWindow(url); }));
  });

  function b64ToBytes(b64) {
    var raw = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function keyOf(sub) { // base64url of the subscription's applicationServerKey, where the browser tells
    var key = sub.options && sub.options.applicationServerKey;
    return key ? btoa(String.fromCharCode.apply(null, new Uint8Array(key)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "") : undefined;
  }
  function call(path, method, body) {
    return fetch(API + path, { method: method, mode: "cors", credentials: "omit",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  // The push service replaced or dropped the subscription: make a new one and tell Pushcart.
  self.addEventListener("pushsubscriptionchange", function (event) {
    var old = event.oldSubscription;
    event.waitUntil(Promise.resolve(event.newSubscription || fetch(API + "/config", { mode: "cors", credentials: "omit" })
      .then(function (r) { return r.json(); })
      .then(function (config) {
        return self.registration.pushManager.subscribe({ userVisibleOnly: true,
          applicationServerKey: b64ToBytes(config.vapid_public_key) });
      }))
      .then(function (sub) {
        // The key it was made with (the server signs its pushes with that one), and the
        // endpoint it replaces (the server moves that one's visitor and pending pushes to it).
        return call("/subscriptions", "POST", { visitor_id: VISITOR, subscription: sub.toJSON(),
          application_server_key: keyOf(sub), replaces: old && old.endpoint !== sub.endpoint ? old.endpoint : undefined });
      })
      .catch(function () { /* the widget re-syncs on the next page view */ }));
  });
})();
