// Charts of the web UI (Chart.js from npm). Data comes from <script type="application/json">
// blocks rendered by the server, so no inline script is needed (CSP script-src 'self').
(function () {
  "use strict";

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function contentsChart() {
    var data = readJson("contents-data");
    var canvas = document.getElementById("contents-chart");
    if (!data || !canvas || typeof Chart === "undefined") return;
    new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{ label: data.label, data: data.kg, borderColor: "#0b5fa5",
                     backgroundColor: "rgba(11,95,165,.12)", fill: true, pointRadius: 0,
                     borderWidth: 2, tension: 0.1 }]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { ticks: { maxTicksLimit: 8, autoSkip: true } },
                  y: { beginAtZero: true, suggestedMax: data.capacity || undefined } },
        plugins: { legend: { display: false } }
      }
    });
  }

  function supplyChart() {
    var canvas = document.getElementById("supply-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var data = readJson("supply-data");
    if (data) {
      drawSupply(canvas, data);
    } else if (canvas.dataset.src) {
      // Fetched after the page: seven days of national figures take longer than the page.
      fetch(canvas.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d) drawSupply(canvas, d); });
    }
  }

  function drawSupply(canvas, data) {
    var colours = ["#b3261e", "#1d7a3a", "#0b5fa5", "#a86400"];
    new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, i) {
          return { label: s.label, data: s.values, borderColor: colours[i % colours.length],
                   backgroundColor: colours[i % colours.length], borderDash: s.dashed ? [6, 4] : [],
                   pointRadius: 2, borderWidth: 2, spanGaps: true };
        })
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        // Capacity is hundreds of times a province's demand: a log axis keeps both readable.
        scales: { y: { type: "logarithmic", title: { display: true, text: data.unit } } }
      }
    });
  }

  contentsChart();
  supplyChart();
})();
