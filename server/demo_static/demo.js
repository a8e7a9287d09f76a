/* The demo shop's own script: a cart in localStorage, reported to Pushcart through window.pushcart. */
window.pushcart = window.pushcart || [];
(function () {
  "use strict";
  var KEY = "demo_cart";
  var body = document.body;
  var CURRENCY = body.getAttribute("data-currency") || "USD";

  function pc() { window.pushcart.push(Array.prototype.slice.call(arguments)); }
  function token() {
    var a = new Uint8Array(12), s = "", i;
    crypto.getRandomValues(a);
    for (i = 0; i < a.length; i++) s += ("0" + a[i].toString(16)).slice(-2);
    return "cart_" + s;
  }
  function load() {
    try { var c = JSON.parse(localStorage.getItem(KEY)); if (c && c.token && Array.isArray(c.items)) return c; } catch (_) { /* reset */ }
    return { token: token(), items: [] };
  }
  function save(cart) { localStorage.setItem(KEY, JSON.stringify(cart)); }
  function cents(value) { return Math.round(Number(value) * 100); }
  function totals(cart) {
    var total = 0, count = 0;
    cart.items.forEach(function (i) { total += cents(i.price) * i.quantity; count += i.quantity; });
    return { total: (total / 100).toFixed(2), count: count };
  }
  function payload(cart) {
    var t = totals(cart);
    return { token: cart.token, total: t.total, currency: CURRENCY, item_count: t.count,
      checkout_url: body.getAttribute("data-checkout-url"),
      items: cart.items.map(function (i) { return { id: i.id, title: i.title, price: i.price, quantity: i.quantity, url: i.url, image: i.image }; }) };
  }
  function text(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  function refresh(cart) {
    var t = totals(cart);
    text("cart-count", String(t.count));
    text("cart-total", t.total);
    text("checkout-count", String(t.count));
  }

  var cart = load();
  save(cart);
  refresh(cart);

  var add = document.getElementById("add-to-cart");
  if (add) add.addEventListener("click", function () {
    var d = add.dataset;
    var product = { id: d.id, title: d.title, price: d.price, currency: CURRENCY, url: d.url, image: d.image };
    var line = cart.items.filter(function (i) { return i.id === d.id; })[0];
    if (line) line.quantity += 1;
    else cart.items.push({ id: d.id, title: d.title, price: d.price, quantity: 1, url: d.url, image: d.image });
    save(cart);
    refresh(cart);
    text("added", d.title + " was added to your cart.");
    pc("track", "add_to_cart", { product: product, cart: payload(cart) });
  });

  var rows = document.getElementById("cart-rows");
  function renderCart() {
    if (!rows) return;
    rows.textContent = "";
    cart.items.forEach(function (item) {
      var tr = document.createElement("tr");
      [item.title, String(item.quantity), "$" + item.price].forEach(function (v) {
        var td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      var td = document.createElement("td"), btn = document.createElement("button");
      btn.type = "button"; btn.className = "remove"; btn.textContent = "Remove";
      btn.setAttribute("aria-label", "Remove " + item.title);
      btn.addEventListener("click", function () {
        cart.items = cart.items.filter(function (i) { return i.id !== item.id; });
        save(cart); refresh(cart); renderCart();
        pc("track", "remove_from_cart", { product: { id: item.id, title: item.title, price: item.price, currency: CURRENCY }, cart: payload(cart) });
      });
      td.appendChild(btn); tr.appendChild(td); rows.appendChild(tr);
    });
    var empty = document.getElementById("cart-empty");
    if (empty) empty.hidden = cart.items.length > 0;
  }
  renderCart();

  var form = document.getElementById("checkout-form");
  if (form) {
    if (cart.items.length) pc("track", "checkout_started", { cart: payload(cart) });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!cart.items.length) { text("pay-status", "Your cart is empty."); return; }
      var email = document.getElementById("email").value.trim();
      var statusPromise = window.pushcart.status ? window.pushcart.status() : Promise.resolve({});
      statusPromise.then(function (s) {
        if (email) pc("identify", { email: email });
        var order = { cart_token: cart.token, items: cart.items.map(function (i) { return { id: i.id, quantity: i.quantity }; }) };
        if (s && s.visitor_id) order.visitor_id = s.visitor_id;
        if (email) order.email = email;
        text("pay-status", "Paying…");
        return fetch(form.getAttribute("data-pay-url"), {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(order)
        });
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (!res.ok) { text("pay-status", "Payment failed: " + ((res.body.error || {}).message || "error")); return; }
          localStorage.removeItem(KEY);
          window.location.href = form.getAttribute("data-thanks-url") + "?order=" + encodeURIComponent(res.body.order_id);
        }).catch(function () { text("pay-status", "Payment failed: network error"); });
    });
  }
})();
