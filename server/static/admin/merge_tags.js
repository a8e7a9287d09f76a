/* Pushcart dashboard: the insert-variable menu. It writes {{ name | default("fallback") }} (or
   {{ name }} without a fallback) at the cursor of the form's title or text field the merchant was
   last in, then fires "input" so a live preview follows. */
(function () {
  "use strict";

  function tag(name, fallback) {
    fallback = fallback.trim();
    // JSON string syntax is a valid Jinja string literal (quotes and backslashes escaped).
    return fallback ? "{{ " + name + " | default(" + JSON.stringify(fallback) + ") }}" : "{{ " + name + " }}";
  }

  function setup(menu) {
    var form = menu.closest("form");
    var fields = form ? form.querySelectorAll('[data-template="title"], [data-template="body"]') : [];
    if (!fields.length) {
      return;
    }
    var variable = menu.querySelector("[data-merge-variable]");
    var fallback = menu.querySelector("[data-merge-fallback]");
    var target = fields[0];
    fields.forEach(function (field) {
      field.addEventListener("focus", function () { target = field; });
    });
    function suggest() {
      var option = variable.options[variable.selectedIndex];
      fallback.value = option ? option.getAttribute("data-fallback") || "" : "";
    }
    variable.addEventListener("change", suggest);
    suggest();
    menu.querySelector("[data-merge-insert]").addEventListener("click", function () {
      var text = tag(variable.value, fallback.value);
      var start = typeof target.selectionStart === "number" ? target.selectionStart : target.value.length;
      var end = typeof target.selectionEnd === "number" ? target.selectionEnd : start;
      target.value = target.value.slice(0, start) + text + target.value.slice(end);
      target.focus();
      target.setSelectionRange(start + text.length, start + text.length);
      target.dispatchEvent(new Event("input", { bubbles: true }));
    });
    menu.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-merge-tags]").forEach(setup);
  });
})();
