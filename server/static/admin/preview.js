/* The dashboard's live previews (a preset's notification on the Events page, the soft-ask
   designer): each change of a form posts its fields to the form's data-preview-endpoint, a
   moment after the last keystroke, and hands the newest answer to the page's own drawing. A
   slower, older answer is dropped; a failed one leaves the preview as it was (the form is checked
   again on save). */
window.pushcartPreview = function (form, fields, show, delay) {
  "use strict";
  var seq = 0, timer = null;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function refresh() {
    var mine = ++seq;
    fetch(form.getAttribute("data-preview-endpoint"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(fields())
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (result) { if (result && mine === seq) { show(result, mine); } })
      .catch(function () { /* a convenience: the saved form is checked on save */ });
  }

  form.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, delay);
  });
  return refresh;
};
