/* Pushcart dashboard: charts on the overview, live notification preview on the events page. */
(function () {
  "use strict";

  function drawCharts() {
    var block = document.getElementById("stats-data");
    if (!block || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var days = data.daily.map(function (d) { return d.date.slice(5); });
    new window.Chart(document.getElementById("daily-chart"), {
      data: {
        labels: days,
        datasets: [
          { type: "bar", label: "Pushes sent", data: data.daily.map(function (d) { return d.sent; }), backgroundColor: "#93b4f5", yAxisID: "y" },
          { type: "bar", label: "Clicks", data: data.daily.map(function (d) { return d.clicks; }), backgroundColor: "#1f6feb", yAxisID: "y" },
          { type: "line", label: "Revenue (" + data.currency + ")", data: data.daily.map(function (d) { return Number(d.gmv); }),
            borderColor: "#1a7f37", backgroundColor: "#1a7f37", tension: 0, yAxisID: "money" }
        ]
      },
      options: {
        maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, position: "left", ticks: { precision: 0 } },
          money: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } }
        }
      }
    });
    var steps = ["visitors", "subscribers", "shoppers", "buyers", "repeat_buyers"];
    new window.Chart(document.getElementById("funnel-chart"), {
      type: "bar",
      data: {
        labels: ["Visitors", "Subscribers", "Shoppers", "Buyers", "Repeat buyers"],
        datasets: [{ label: "People", data: steps.map(function (s) { return data.funnel[s]; }),
          backgroundColor: ["#c7d7fb", "#93b4f5", "#5b8def", "#1f6feb", "#1a4fb0"] }]
      },
      options: { indexAxis: "y", maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }

  function setupPreview(form) {
    var box = document.getElementById(form.getAttribute("data-preview"));
    if (!box) { return; }
    var card = form.closest(".preset");
    var kind = card ? card.getAttribute("data-kind") : "";
    var urlOut = document.querySelector('[data-preview-url="' + kind + '"]');
    var previewImage = box.querySelector('[data-field="image"]');
    if (previewImage) {
      // A picture that does not load is left out, as the browser's notification would.
      previewImage.addEventListener("error", function () { previewImage.classList.add("hidden"); });
    }
    var siteEl = box.querySelector(".notif-site");
    var initial = ((siteEl && siteEl.textContent) || "P").charAt(0).toUpperCase();

    function fields() {
      var out = {};
      form.querySelectorAll("[data-template]").forEach(function (el) { out[el.getAttribute("data-template")] = el.value; });
      return out;
    }

    function show(result, mine) {
      box.querySelector('[data-field="title"]').textContent = result.title || "";
      box.querySelector('[data-field="body"]').textContent = result.body || "";
      var image = box.querySelector('[data-field="image"]');
      if (image) {
        if (result.image) { image.src = result.image; image.classList.remove("hidden"); }
        else { image.removeAttribute("src"); image.classList.add("hidden"); }
      }
      var iconBox = box.querySelector(".notif-icon");
      iconBox.textContent = "";
      if (result.icon) {
        var img = document.createElement("img");
        img.src = result.icon; img.alt = ""; img.width = 40; img.height = 40; img.referrerPolicy = "no-referrer";
        iconBox.appendChild(img);
      } else {
        var blank = document.createElement("span");
        blank.className = "notif-icon-blank"; blank.textContent = initial;
        iconBox.appendChild(blank);
      }
      if (urlOut) { urlOut.textContent = result.url || "(the shop's home page)"; }
      form.querySelectorAll("[data-error]").forEach(function (el) {
        el.textContent = (result.errors && result.errors[el.getAttribute("data-error")]) || "";
      });
      box.setAttribute("data-rendered", String(mine));
    }

    var refresh = window.pushcartPreview(form, fields, show, 200);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    document.querySelectorAll("form[data-preview]").forEach(setupPreview);
  });
}());
