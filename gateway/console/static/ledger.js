// The summaries page's chart: kilograms per day or month as bars (uPlot, static/vendor/), drawn from
// the figures the server embeds (#summary-chart) — the same ones as the table under it, which stays
// the answer without script.
"use strict";
(function () {
  const holder = document.getElementById("summary-plot");
  const source = document.getElementById("summary-chart");
  if (!holder || !source || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const T = JSON.parse(document.getElementById("summary-texts").textContent);
  const xs = data.labels.map((_, i) => i);
  const width = Math.max(320, holder.clientWidth || 640);
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({size: [0.6, 60]}) : undefined;
  const opts = {
    width: width, height: 240, legend: {show: false},
    scales: {x: {time: false, range: [-0.5, Math.max(0.5, xs.length - 0.5)]}, y: {range: (u, lo, hi) => [0, hi * 1.1 || 1]}},
    axes: [
      {values: (u, splits) => splits.map((i) => (Number.isInteger(i) && data.labels[i]) || ""), splits: () => xs},
      {size: 60, label: T.kg},
    ],
    series: [{}, {label: T.kg, stroke: "#24506f", fill: "rgba(36,80,111,0.45)", width: 1, paths: bars,
                  points: {show: !bars}}],
  };
  new uPlot(opts, [xs, data.kg], holder);
  document.body.dataset.chart = String(xs.length);
})();
