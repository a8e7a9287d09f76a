/* The soft-ask designer: the live preview. Each change of the form asks the server for the
   soft-ask's markup and style (the very strings the widget gets) and puts them into a shadow
   root inside the preview frame, as the widget does on the shop's page. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("softask-form"), host = document.getElementById("softask-preview-host"),
      frame = document.getElementById("softask-frame"), first = document.getElementById("softask-first");
    if (!form || !host || !frame || !host.attachShadow) { return; }
    var root = host.attachShadow({ mode: "open" }), still = new CSSStyleSheet();
    // The one difference from the shop's page: no fade-in at each keystroke.
    still.replaceSync(".box{animation:none}");

    function show(result, mine) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(result.css || "");
      root.adoptedStyleSheets = [sheet, still];
      root.innerHTML = result.html || "";
      form.querySelectorAll("[data-error]").forEach(function (el) {
        el.textContent = (result.errors && result.errors[el.getAttribute("data-error")]) || "";
      });
      host.setAttribute("data-rendered", String(mine));
    }

    function fields() {
      var out = {};
      new FormData(form).forEach(function (value, name) { if (name !== "csrf_token") { out[name] = String(value); } });
      return out;
    }

    var refresh = window.pushcartPreview(form, fields, show, 120);
    form.addEventListener("change", refresh);
    document.querySelectorAll("[data-frame]").forEach(function (button) {
      button.addEventListener("click", function () {
        var which = button.getAttribute("data-frame");
        frame.className = "softask-frame " + which;
        document.querySelectorAll("[data-frame]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b === button));
        });
      });
    });
    try { show(JSON.parse(first.textContent), 0); } catch (e) { refresh(); }
  });
})();
