/* Pushcart dashboard, on every page: what the layout needs beyond CSS.
   - On a narrow screen the nav is one row that scrolls sideways: bring the active page's item
     into view (centred when it can be) so the merchant sees where they are. Only the nav's own
     scroll position moves, never the page.
   - A table or code block wider than the screen scrolls inside its box: make such a box
     focusable so keyboard users can scroll it too (it is a tab stop only while it overflows). */
(function () {
  "use strict";

  function showActiveItem() {
    var nav = document.querySelector(".nav");
    var active = nav && nav.querySelector('[aria-current="page"]');
    if (!active || nav.scrollWidth <= nav.clientWidth) {
      return;
    }
    var offset = active.getBoundingClientRect().left - nav.getBoundingClientRect().left + nav.scrollLeft;
    nav.scrollLeft = Math.max(0, offset - (nav.clientWidth - active.offsetWidth) / 2);
  }

  function focusableScrollers() {
    document.querySelectorAll(".table-wrap, pre").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
      }
    });
  }

  showActiveItem();
  focusableScrollers();
  window.addEventListener("resize", focusableScrollers);
})();
