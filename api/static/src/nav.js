// Main menu: collapsed on a narrow screen (the <summary> is its accessible toggle), open on a
// wide one (720 px and up, where app.css hides the toggle of an open menu). Without this script
// the menu stays collapsed behind its toggle on every screen.
(function () {
  "use strict";
  var menu = document.querySelector("details[data-mainnav]");
  if (!menu || !window.matchMedia) { return; }
  var wide = window.matchMedia("(min-width: 720px)");
  function follow() { menu.open = wide.matches; }
  follow();
  wide.addEventListener("change", follow);
})();
