// The Adoption page's chart: one line per build and platform, installs polling per hour.
// Chart.js is vendored (static/adoption/vendor): the admin works without reaching any CDN.
"use strict";
(function () {
  const series = JSON.parse(document.getElementById("adoption-installs").textContent);
  const hours = [...new Set(Object.values(series).flatMap(points => Object.keys(points)))].sort();
  const palette = ["#417690", "#e07b39", "#5a9e4b", "#b5485d", "#7a5fb0", "#c9a227", "#3b8ea5"];
  const datasets = Object.entries(series).map(([label, points], index) => ({
    label,
    data: hours.map(hour => points[hour] ?? null),
    borderColor: palette[index % palette.length],
    backgroundColor: palette[index % palette.length],
    spanGaps: true,
    tension: 0.2,
  }));
  const labels = hours.map(hour => hour.slice(5, 13).replace("T", " ") + "h");
  window.adoptionChart = new Chart(document.getElementById("adoption-chart"), {
    type: "line",
    data: { labels, datasets },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "unique installs" } } },
    },
  });
})();
