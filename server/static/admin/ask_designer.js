/* Settings: the soft-ask designer's live preview. Every field marked data-ask redraws the box as
   the widget would show it (text, labels, colour, position, icon), on a desktop or a phone frame
   (the toggle); the phone uses its own text and position when they are set. */
(function () {
  "use strict";

  var frame = document.getElementById("ask-preview");
  if (!frame) {
    return;
  }
  var box = frame.querySelector(".ask-box");
  var fields = {};
  document.querySelectorAll("[data-ask]").forEach(function (input) {
    fields[input.dataset.ask] = input;
  });

  function value(name) {
    return fields[name] ? fields[name].value.trim() : "";
  }

  function ink(hex) {
    var n = parseInt(hex.slice(1), 16);
    return 0.299 * (n >> 16) + 0.587 * (n >> 8 & 255) + 0.114 * (n & 255) > 160 ? "#111" : "#fff";
  }

  function draw() {
    var phone = frame.dataset.device === "phone";
    var color = /^#[0-9a-f]{6}$/i.test(value("color")) ? value("color") : "#1f6feb";
    box.querySelector(".ask-text").textContent = (phone && value("phone_text")) || value("text");
    box.querySelector(".ask-yes").textContent = value("yes") || "Yes, notify me";
    box.querySelector(".ask-no").textContent = value("no") || "Not now";
    box.dataset.position = (phone && value("phone_position")) || value("position") || "bottom-left";
    box.style.borderTopColor = color;
    var yes = box.querySelector(".ask-yes");
    yes.style.background = color;
    yes.style.borderColor = color;
    yes.style.color = ink(color);
    box.querySelector(".ask-bell").style.fill = color;
    var icon = box.querySelector(".ask-icon");
    var url = value("icon");
    icon.hidden = !/^https?:\/\/\S+$/i.test(url);
    box.querySelector(".ask-bell").hidden = !icon.hidden;
    if (!icon.hidden && icon.getAttribute("src") !== url) {
      icon.setAttribute("src", url);
    }
  }

  Object.keys(fields).forEach(function (name) {
    fields[name].addEventListener("input", draw);
    fields[name].addEventListener("change", draw);
  });
  document.querySelectorAll(".preview-toggle button").forEach(function (button) {
    button.addEventListener("click", function () {
      frame.dataset.device = button.dataset.device;
      document.querySelectorAll(".preview-toggle button").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      draw();
    });
  });
  draw();
}());
