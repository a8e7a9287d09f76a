/*! Pushcart for WooCommerce: links the widget's visitor id to the checkout (a first-party
 * cookie the plugin reads when the order is made) and, after WooCommerce's AJAX cart events,
 * fetches the cart events the server queued and hands them to the widget.
 * Every entry point is wrapped: nothing here may throw into the shop's page.
 */
(function (win, doc) {
  "use strict";
  if (!win || !doc) return;

  var cfg = win.pushcartWc || {};
  var VISITOR = /^[A-Za-z0-9_-]{8,64}$/;
  var COOKIE = "pushcart_vid";
  function noop() {}

  // ---- the visitor id ------------------------------------------------------------------------
  function cookieValue(name) {
    var m = doc.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  // The widget uses the same name for its own fallback cookie when localStorage is blocked:
  // same value, same format, so the two never disagree.
  function setVisitorCookie(id) {
    if (typeof id !== "string" || !VISITOR.test(id) || cookieValue(COOKIE) === id) return;
    doc.cookie = COOKIE + "=" + id + "; path=/; max-age=31536000; SameSite=Lax" +
      (win.location.protocol === "https:" ? "; Secure" : "");
  }
  function fromStorage() {
    try { return win.localStorage.getItem(COOKIE); } catch (_) { return null; }
  }
  var tries = 0;
  function linkVisitor() {
    try {
      var pc = win.pushcart;
      if (pc && pc.__pushcart && typeof pc.status === "function") {
        pc.status().then(function (s) { try { setVisitorCookie(s && s.visitor_id); } catch (_) { /* never */ } }, noop);
      } else if (tries++ < 20) {
        win.setTimeout(linkVisitor, 500); // the widget loads async
      } else {
        setVisitorCookie(fromStorage());
      }
    } catch (_) { /* never throw into the page */ }
  }

  // ---- cart events after AJAX cart changes ---------------------------------------------------
  var timer = null, busy = false, again = false;
  function hand(calls) {
    if (!Array.isArray(calls)) return;
    win.pushcart = win.pushcart || [];
    for (var i = 0; i < calls.length; i++) {
      var c = calls[i];
      if (Array.isArray(c) && c[0] === "track" && typeof c[1] === "string") win.pushcart.push(c);
    }
  }
  function fetchEvents() {
    if (!cfg.events || !cfg.nonce || !win.fetch) return;
    if (busy) { again = true; return; }
    busy = true;
    win.fetch(cfg.events, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "nonce=" + encodeURIComponent(cfg.nonce)
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { hand(data && data.calls); })
      .catch(noop)
      .then(function () { busy = false; if (again) { again = false; fetchEvents(); } });
  }
  // WooCommerce may fire a jQuery event and its native twin for one change: fetch once.
  function soon() {
    try {
      if (timer) win.clearTimeout(timer);
      timer = win.setTimeout(function () { timer = null; try { fetchEvents(); } catch (_) { /* never */ } }, 100);
    } catch (_) { /* never */ }
  }
  function bind() {
    try {
      if (win.jQuery) win.jQuery(doc.body).on("added_to_cart removed_from_cart updated_cart_totals", soon);
      if (doc.body && doc.body.addEventListener) {
        doc.body.addEventListener("wc-blocks_added_to_cart", soon);
        doc.body.addEventListener("wc-blocks_removed_from_cart", soon);
      }
    } catch (_) { /* never */ }
    linkVisitor();
  }

  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", bind);
  else bind();
})(typeof window !== "undefined" ? window : null, typeof document !== "undefined" ? document : null);
