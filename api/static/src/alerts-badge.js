// Header badge: the number of unresolved alerts in the user's area, refreshed every minute.
(function () {
  "use strict";
  var badge = document.querySelector("[data-alert-badge]");
  if (!badge) { return; }
  function refresh() {
    fetch("/api/alerts/count", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) {
        if (!c) { return; }
        badge.querySelector("[data-alert-count]").textContent = String(c.active);
        badge.hidden = c.active === 0;
        badge.classList.toggle("alert-badge-critical", c.critical > 0);
      })
      .catch(function () { /* offline for a moment: keep the last count */ });
  }
  refresh();
  setInterval(refresh, 60000);
})();
