/* Pushcart dashboard: a running campaign's live progress. Polls the page's progress URL (JSON,
   same session) and updates the figures, the bar and its text without a reload; stops once the
   campaign is no longer running, then shows its final state and drops the Cancel button. */
(function () {
  "use strict";
  var INTERVAL = 2000;
  var MAX_INTERVAL = 30000;

  function setFigure(name, text) {
    var el = document.querySelector('#campaign-stats [data-figure="' + name + '"]');
    if (el) { el.textContent = text; }
  }

  function describe(p) {
    var total = p.targeted === null ? p.planned : p.targeted;
    var text = p.sent + " of " + total + " · " + p.percent + " %";
    if (p.running && p.seconds_left) {
      text += " · about " + Math.ceil(p.seconds_left / 60) + " min left at " + p.rate_per_minute + " a minute";
    }
    if (!p.running) { text += " · " + p.status; }
    return text;
  }

  function show(live, p) {
    ["planned", "sent", "failed", "clicks", "orders", "gmv"].forEach(function (name) { setFigure(name, String(p[name])); });
    setFigure("targeted", p.targeted === null ? "—" : String(p.targeted));
    setFigure("ctr", (p.ctr * 100).toFixed(1) + " %");
    var bar = live.querySelector("progress");
    bar.value = p.percent;
    bar.textContent = p.percent + " %";
    live.querySelector("#campaign-live-text").textContent = describe(p);
    var badge = document.getElementById("campaign-status");
    if (badge && badge.textContent !== p.status) {
      badge.textContent = p.status;
      badge.className = "badge badge-" + p.status;
    }
    var planning = document.getElementById("campaign-progress");
    if (planning && (p.planned > 0 || !p.running)) { planning.hidden = true; }  // the bar says more now
    if (!p.running) {
      var cancel = document.getElementById("cancel-campaign");
      if (cancel) { cancel.closest("form").hidden = true; }
    }
  }

  function start(live) {
    var url = live.getAttribute("data-progress-url");
    var wait = INTERVAL;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (p) {
          show(live, p);
          wait = INTERVAL;
          if (p.running) { setTimeout(tick, wait); }
        })
        .catch(function () {
          wait = Math.min(wait * 2, MAX_INTERVAL);  // the page stays usable; try again more slowly
          setTimeout(tick, wait);
        });
    }
    setTimeout(tick, wait);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("campaign-live");
    if (live && window.fetch) { start(live); }
  });
})();
