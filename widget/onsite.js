/*! Pushcart on-site messages: loaded by widget.js only where the shop has one that may show */
(w => {
"use strict";
var d = w && w.document;
// Never throw into the page, and leave no global behind: everything lives in this closure
try {
  var el = d.currentScript, m = el && /^(.+)\/onsite\.js\?shop=([\w-]{1,64})$/.exec(el.src), pc = w.pushcart, vid, shown, exits;
  if (!m || !pc || !pc.status || !w.fetch) return;
  var API = m[1] + "/v1/shops/" + m[2] + "/onsite", perf = w.performance;
  var safe = f => (...a) => { try { return f(...a); } catch (_) {} };
  var post = (path, body) => w.fetch(API + path, {method: "POST", credentials: "omit", keepalive: true,
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(Object.assign({visitor_id: vid}, body))})
    .then(r => r.ok ? r.json() : null);
  var dwell = () => perf.now() / 1e3;
  var product = () => [].some.call(d.querySelectorAll('script[type="application/ld+json"]'), n => /"Product"/.test(n.textContent));
  var later = (f, s) => w.setTimeout(safe(f), Math.max(0, s * 1e3 - perf.now()) + 50);

  // Ask the server: it knows the visits and the cart, and answers when to ask again
  var ask = exit => shown || post("", {url: w.location.href, product: product(), dwell: dwell(), exit: !!exit}).then(a => {
    if (!a || shown) return;
    if (a.message) return show(a.message);
    if (a.next > dwell()) later(ask, a.next);
    // Exit intent, on desktop only: the pointer leaves the window through its top edge
    if (a.exit && !exits && w.matchMedia && w.matchMedia("(pointer:fine)").matches) {
      exits = 1;
      d.addEventListener("mouseout", safe(e => { if (!e.relatedTarget && e.clientY <= 0) ask(1); }));
    }
  }).catch(() => {});

  var css = `.box{position:fixed;z-index:2147483001;right:16px;bottom:16px;width:360px;max-width:calc(100vw - 32px);
max-height:calc(100vh - 32px);overflow:auto;box-sizing:border-box;padding:20px;background:#fff;color:#1b1f24;
border-radius:12px;box-shadow:0 10px 32px #00000047;font:15px/1.45 system-ui,sans-serif}
h2{margin:0 32px 6px 0;font-size:18px;line-height:1.3}p{margin:0 0 12px}img{display:block;max-width:100%;max-height:160px;
margin:0 auto 12px;border-radius:8px}.code{display:block;margin:0 0 14px;padding:10px;border:2px dashed #1a5fd0;
border-radius:8px;text-align:center;font:700 18px/1.3 ui-monospace,monospace;letter-spacing:1px;user-select:all}
.row{display:flex;flex-wrap:wrap;gap:8px}a,button{font:inherit;font-weight:600;border-radius:8px;padding:9px 14px;
cursor:pointer;border:1px solid #1a5fd0;text-decoration:none;text-align:center}.go{background:#1a5fd0;color:#fff;flex:1}
.reply{background:#fff;color:#1a5fd0}.x{position:absolute;top:8px;right:8px;width:36px;height:36px;padding:0;border:0;
background:none;color:#1b1f24;font-size:24px;line-height:1}:focus-visible{outline:3px solid #111;outline-offset:2px}
@media (max-width:480px){.box{left:8px;right:8px;bottom:8px;width:auto;max-width:none}}
@media (prefers-reduced-motion:no-preference){.box{animation:in .25s ease-out}@keyframes in{from{opacity:0;transform:translateY(12px)}}}`;

  // The message as a non-modal dialog in a shadow root: focus moves in and comes back on close
  var show = msg => {
    shown = 1;
    var host = d.createElement("div"), root = host.attachShadow({mode: "open"}), before = d.activeElement,
      box = d.createElement("div"), sheet, tag = (name, cls, text, parent) => {
        var e = d.createElement(name);
        if (cls) e.className = cls;
        if (text != null) e.textContent = text;
        (parent || box).appendChild(e);
        return e;
      }, report = (what, body) => post("/" + msg.token + "/" + what, body).catch(() => {}),
      close = safe(() => {
        host.remove();
        try { if (before && before.focus) before.focus(); } catch (_) {}
      }), row, h;
    host.id = "pushcart-onsite";
    box.className = "box";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-labelledby", "pc-title");
    box.tabIndex = -1;
    if (msg.image) { h = tag("img"); h.alt = ""; h.src = msg.image; }
    tag("h2", "", msg.title).id = "pc-title";
    if (msg.text) {
      tag("p", "", msg.text).id = "pc-text";
      box.setAttribute("aria-describedby", "pc-text");
    }
    if (msg.code) {
      h = tag("p", "", "Your code:");
      tag("strong", "code", msg.code, h);
    }
    row = tag("div", "row");
    if (msg.cta) {
      h = tag("a", "go", msg.cta.label, row);
      h.href = msg.cta.url;
      h.addEventListener("click", safe(() => report("click")));
    }
    if (msg.optin) tag("button", "go", msg.optin_label, row).addEventListener("click", safe(() => {
      report("click");
      pc.subscribe();
      close();
    }));
    (msg.replies || []).forEach((label, i) => tag("button", "reply", label, row).addEventListener("click", safe(() => {
      report("reply", {reply: i});
      close();
    })));
    if (!row.firstChild) row.remove();
    h = tag("button", "x", "\u00d7");
    h.setAttribute("aria-label", msg.close_label || "Close");
    h.addEventListener("click", safe(() => { report("close"); close(); }));
    box.addEventListener("keydown", safe(e => { if (e.key == "Escape") { report("close"); close(); } }));
    // A constructed sheet passes a CSP without 'unsafe-inline'; <style> is the fallback
    try { sheet = new w.CSSStyleSheet(); sheet.replaceSync(css); root.adoptedStyleSheets = [sheet]; } catch (_) {
      tag("style", "", css, root);
    }
    root.appendChild(box);
    d.body.appendChild(host);
    (root.querySelector(".go,.reply") || box).focus();
  };

  pc.status().then(s => {
    vid = s.visitor_id;
    // The first ask once this page's view has had time to reach the server (events go within a second)
    if (vid) later(ask, 2);
  }).catch(() => {});
} catch (_) {}
})(typeof window == "object" && window);
