// The coordination map of BYT and the departments (Leaflet from npm). Works offline: the base layer is Natural Earth
// country outlines (world-atlas TopoJSON served by this server); Viet Nam is drawn with the
// Hoàng Sa and Trường Sa archipelagos as Vietnamese territory (MISSION.md "Maps"). Online tiles
// are an optional layer, off by default.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  var t = JSON.parse(document.getElementById("map-i18n").textContent);
  var COLOURS = { enough: "#1d7a3a", needs_more: "#b3261e", unknown: "#9aa3ad" };
  var VIETNAM = "704";

  // Approximate extents of the two archipelagos (islands, reefs and banks), drawn as
  // Vietnamese territory with their Vietnamese names.
  var HOANG_SA = [[17.15, 111.15], [17.15, 112.95], [15.75, 112.95], [15.75, 111.15]];
  var TRUONG_SA = [[11.6, 111.4], [11.6, 114.9], [9.9, 116.1], [7.6, 114.4], [7.6, 111.9], [8.6, 111.4]];

  var map = L.map(el, { zoomSnap: 0.25, minZoom: 4, maxZoom: 14, attributionControl: true });
  map.fitBounds([[8.2, 102.1], [23.4, 116.2]]);
  map.attributionControl.setPrefix(false);
  // The outline loads asynchronously: its own pane keeps it under the points whatever the order.
  map.createPane("base").style.zIndex = 250;
  var baseRenderer = L.svg({ pane: "base" });

  var base = L.layerGroup().addTo(map);
  var tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 18, attribution: "© OpenStreetMap"
  });

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function drawBase(world) {
    var countries = topojson.feature(world, world.objects.countries);
    L.geoJSON(countries, {
      style: function (f) {
        var vn = String(f.id) === VIETNAM;
        return { color: vn ? "#7a1f1f" : "#9aa3ad", weight: vn ? 1.2 : 0.6,
                 fillColor: vn ? "#fff4d6" : "#eceff3", fillOpacity: 1 };
      },
      interactive: false, pane: "base", renderer: baseRenderer
    }).addTo(base);
    [[HOANG_SA, t.hoang_sa, [16.45, 112.05]], [TRUONG_SA, t.truong_sa, [9.7, 113.6]]].forEach(function (a) {
      L.polygon(a[0], { color: "#7a1f1f", weight: 1, dashArray: "4 3", fillColor: "#fff4d6",
                        fillOpacity: 0.6, interactive: false, pane: "base",
                        renderer: baseRenderer }).addTo(base);
      L.marker(a[2], { icon: L.divIcon({ className: "island-label", html: "<span>" + esc(a[1]) + "</span>", iconSize: null }),
                       interactive: false, keyboard: false }).addTo(base);
    });
  }

  // Vector markers (SVG paths) take no keyboard focus of their own: each one gets a tab stop, a
  // name (read by screen readers), Enter/Space opening the same popup as a click and Escape
  // closing it (Leaflet's own Escape only listens while the map container itself has focus).
  // The path element is created every time the layer is added to the map, hence "add".
  function keyboardable(layer, label) {
    layer.on("add", function () {
      var el = layer.getElement();
      if (!el) return;
      el.setAttribute("tabindex", "0");
      el.setAttribute("role", "button");
      el.setAttribute("aria-label", label);
      el.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " " || e.key === "Spacebar") {
          e.preventDefault();
          layer.openPopup();
        } else if (e.key === "Escape" || e.key === "Esc") {
          layer.closePopup();
        }
      });
    });
    return layer;
  }

  fetch("/vendor/world-atlas/countries-50m.json")
    .then(function (r) { return r.json(); })
    .then(drawBase)
    .catch(function () { /* points still show without the outline */ });

  var provinces = L.layerGroup();
  var facilities = L.layerGroup();
  var suppliers = L.layerGroup();
  var flows = L.layerGroup();

  function drawPoints(data) {
    data.provinces.forEach(function (p) {
      var circle = L.circle([p.lat, p.lon], { radius: 25000 + 8000 * p.facilities, color: COLOURS[p.status],
                                              weight: 1, fillOpacity: 0.12, className: "prov-marker" });
      keyboardable(circle, p.name + " — " + t[p.status] + ", " + t.facilities + ": " + p.facilities)
        .bindPopup("<strong>" + esc(p.name) + "</strong><br>" + esc(t.facilities) + ": " +
                   p.facilities + " · " + p.needs_more + " " + esc(t.needing) +
                   "<br>" + esc(p.reporting_text) + " · " + esc(p.known_text))
        .addTo(provinces);
    });
    data.facilities.forEach(function (f) {
      var marker = L.circleMarker([f.lat, f.lon], { radius: 7, color: "#222", weight: 1,
                                                    className: "fac-marker fac-" + f.id,
                                                    fillColor: COLOURS[f.status] || COLOURS.unknown,
                                                    fillOpacity: 0.95 });
      keyboardable(marker, f.name + " — " + (t[f.status] || t.unknown) + ", " + t.days + ": " + f.days)
        .bindPopup("<strong>" + esc(f.name) + "</strong><br>" + esc(t.province) + ": " + esc(f.province) +
                   "<br>" + esc(t.parent) + ": " + esc(f.parent) +
                   "<br>" + esc(t[f.status]) + " · " + esc(t.days) + ": " + esc(f.days) +
                   "<br>" + esc(t.stock) + ": " + esc(f.stock) + " · " + esc(t.need) + ": " + esc(f.need) +
                   (f.tanks ? "<br><span class=\"incomplete\">" + esc(f.tanks) + " — " + esc(t.incomplete) + "</span>" : "") +
                   "<br>" + esc(f.reported ? t.reported : t.not_reported) +
                   "<br><a href=\"" + esc(f.url) + "\">" + esc(t.open) + "</a>")
        .bindTooltip(esc(f.name))
        .addTo(facilities);
    });
    data.suppliers.forEach(function (s) {
      var d = 0.06;
      var site = L.rectangle([[s.lat - d, s.lon - d], [s.lat + d, s.lon + d]], { color: "#6b4d00", weight: 1,
                                                                                fillColor: "#f0b400", fillOpacity: 0.95 });
      keyboardable(site, s.name + " — " + t.supplier)
        .bindPopup("<strong>" + esc(s.name) + "</strong><br>" + esc(t.capacity) + ": " + esc(s.normal) +
                   " / " + esc(s.full) + "<br>" + esc(t.contact) + ": " + esc(s.contact) + " " + esc(s.phone))
        .bindTooltip(esc(s.name))
        .addTo(suppliers);
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
  }

  // The points arrive after the page's first paint (GET data-src, in the caller's scope).
  getJSON(el.getAttribute("data-src"))
    .then(drawPoints)
    .catch(function () {
      var msg = document.getElementById("map-error");
      if (msg) { msg.textContent = t.unavailable; msg.hidden = false; }
    })
    .then(function () { el.removeAttribute("aria-busy"); });

  // Support requests (open, by urgency: the most urgent drawn on top) and shipments assigned or
  // on the road, from the coordination service; each popup links to the request's page.
  var URGENCY = { critical: { colour: "#b3261e", radius: 15, rank: 3 },
                  high: { colour: "#b45309", radius: 13, rank: 2 },
                  normal: { colour: "#6a3d9a", radius: 11, rank: 1 },
                  unknown: { colour: "#6a3d9a", radius: 11, rank: 0 } };
  function urgencyOf(q) { return URGENCY[q.urgency] || URGENCY.unknown; }
  function kg(v) { return v == null ? "—" : Math.round(v).toLocaleString(document.documentElement.lang); }
  function when(v) {
    if (!v) return "—";
    var d = new Date(v);
    return isNaN(d) ? "—" : d.toLocaleString(document.documentElement.lang,
      { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric",
        hour: "2-digit", minute: "2-digit" });
  }
  function requestLink(id) {
    return "<br><a href=\"/coordination/requests/" + encodeURIComponent(id) + "\">" + esc(t.open_request) + "</a>";
  }
  var coordination = el.getAttribute("data-coordination");
  if (coordination) {
    getJSON(coordination)
      .then(function (c) {
        (c.flows || []).forEach(function (f) {
          if (f.from_lat == null || f.to_lat == null) return;
          var line = L.polyline([[f.from_lat, f.from_lon], [f.to_lat, f.to_lon]],
                                { color: "#6a3d9a", weight: 3, dashArray: "8 6",
                                  className: "flow-line flow-" + f.state + " flow-req-" + f.request_id });
          var state = t.state[f.state] || f.state;
          keyboardable(line, f.source_name + " → " + f.facility_name + ", " + kg(f.amount_kg) + " kg, " + state)
            .bindPopup("<strong>" + esc(f.source_name) + " → " + esc(f.facility_name) + "</strong><br>" +
                       esc(kg(f.amount_kg)) + " kg · " + esc(t.state_label) + ": " + esc(state) +
                       requestLink(f.request_id))
            .addTo(flows);
        });
        (c.requests || []).slice().sort(function (a, b) { return urgencyOf(a).rank - urgencyOf(b).rank; })
          .forEach(function (q) {
            if (q.lat == null) return;
            var u = urgencyOf(q);
            var urgency = t.urgency[q.urgency] || t.urgency.unknown;
            var ring = L.circleMarker([q.lat, q.lon], { radius: u.radius, color: u.colour, weight: 3, fill: false,
                                                        className: "request-ring urgency-" + (q.urgency || "unknown") +
                                                                   " req-" + q.id });
            keyboardable(ring, t.request + ": " + q.name + ", " + urgency)
              .bindPopup("<strong>" + esc(t.request) + " #" + esc(q.id) + ": " + esc(q.name) + "</strong><br>" +
                         esc(t.urgency_label) + ": " + esc(urgency) + " · " + esc(t.state_label) + ": " +
                         esc(t.state[q.state] || q.state) + "<br>" +
                         esc(t.remaining) + ": " + esc(kg(q.remaining_kg)) + " kg · " +
                         esc(t.needed_by) + ": " + esc(when(q.needed_by)) + requestLink(q.id))
              .addTo(flows);
          });
      })
      .catch(function () { /* the map works without the coordination layer */ });
  }

  // Suggested shipments (the allocation's proposal, nothing assigned): dotted lines from the
  // source to the facility, each popup with the amount, the reason and the suggestions page.
  // A second request, so that the model's solve time never holds the layers above back.
  var suggested = L.layerGroup();
  var suggestedSrc = el.getAttribute("data-suggested");
  if (suggestedSrc) {
    getJSON(suggestedSrc)
      .then(function (c) {
        var note = c.note && c.note.message ? "<br><small>" + esc(c.note.message) + "</small>" : "";
        (c.suggested_flows || []).forEach(function (s) {
          if (!s.from || !s.to || s.from.lat == null || s.to.lat == null) return;
          var line = L.polyline([[s.from.lat, s.from.lon], [s.to.lat, s.to.lon]],
                                { color: "#0f766e", weight: 3, opacity: 0.9, dashArray: "1 7", lineCap: "round",
                                  className: "suggested-line suggested-to-" + s.facility_id +
                                             " suggested-from-" + s.source_id });
          var amount = kg(s.kg) + " " + t.kg_lox;
          keyboardable(line, t.suggested + ": " + s.source_name + " → " + s.facility_name + ", " + amount)
            .bindPopup("<strong>" + esc(t.suggested) + ": " + esc(s.source_name) + " → " + esc(s.facility_name) +
                       "</strong><br>" + esc(amount) + " · " + esc(kg(s.road_km)) + " km" +
                       (s.reason ? "<br>" + esc(t.why) + ": " + esc(s.reason.message) : "") + note +
                       "<br><a href=\"/coordination/suggestions\">" + esc(t.open_suggestions) + "</a>")
            .addTo(suggested);
        });
      })
      .catch(function () { /* the suggestions page still lists them */ })
      .then(function () { el.setAttribute("data-suggested-drawn", "true"); });
  }
  suggested.addTo(map);
  provinces.addTo(map);
  facilities.addTo(map);
  suppliers.addTo(map);
  flows.addTo(map);

  var overlays = {};
  overlays[t.prov_layer] = provinces;
  overlays[t.fac_layer] = facilities;
  overlays[t.sup_layer] = suppliers;
  overlays[t.flow_layer] = flows;
  overlays[t.suggested_layer] = suggested;
  overlays[t.tiles] = tiles;
  var bases = {};
  bases[t.base] = base;
  L.control.layers(bases, overlays, { collapsed: true }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
})();
