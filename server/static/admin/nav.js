/* Pushcart dashboard: on a narrow screen the nav is one row that scrolls sideways; bring the
   active page's item into view (centred when it can be) so the merchant sees where they are.
   Only the nav's own scroll position moves, never the page. */
(function () {
  "use strict";
  var nav = document.querySelector(".nav");
  var active = nav && nav.querySelector('[aria-current="page"]');
  if (!active || nav.scrollWidth <= nav.clientWidth) {
    return;
  }
  var offset = active.getBoundingClientRect().left - nav.getBoundingClientRect().left + nav.scrollLeft;
  nav.scrollLeft = Math.max(0, offset - (nav.clientWidth - active.offsetWidth) / 2);
})();
