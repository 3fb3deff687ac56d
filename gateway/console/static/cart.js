// A cart's history charts: uPlot (static/vendor/) over the JSON the server embeds (#series-data),
// and over /api/carts/{cart}/series?range=… when the range switch is used (no reload; the links
// still work without script).  Each chart's text summary (low / high / last) is the fallback.
"use strict";
(function () {
  const T = JSON.parse(document.getElementById("series-texts").textContent);
  const box = document.querySelector(".charts");
  const cart = box.dataset.cart;
  const HEIGHT = 160; // px of each chart
  const COLOR = "#24506f";
  let charts = [];

  function fmt(v) { return v === null || v === undefined ? "-" : String(Math.round(v * 10) / 10); }

  function summary(fig, s) {
    fig.querySelector(".summary").textContent = s
      ? T.low_high_last.replace("{low}", fmt(s.low)).replace("{high}", fmt(s.high)).replace("{last}", fmt(s.last))
      : T.no_history;
  }

  function draw(data) {
    for (const c of charts) c.destroy();
    charts = [];
    for (const fig of box.querySelectorAll("figure")) {
      const key = fig.dataset.key;
      const holder = fig.querySelector(".chart");
      holder.replaceChildren();
      summary(fig, data.summary[key]);
      if (!data.summary[key] || typeof uPlot === "undefined") continue;
      const width = Math.max(240, holder.clientWidth || fig.clientWidth - 16);
      const opts = {
        width: width, height: HEIGHT, legend: {show: false},
        scales: {x: {time: true, range: [data.since, data.until]}},
        series: [{}, {label: fig.querySelector("figcaption").textContent, stroke: COLOR, width: 2,
                      fill: "rgba(36,80,111,0.08)", spanGaps: false, points: {show: false}}],
        axes: [{}, {size: 60}],
      };
      charts.push(new uPlot(opts, [data.at, data.series[key]], holder));
    }
    document.body.dataset.range = data.range;
    document.body.dataset.charts = String(charts.length);
  }

  function select(range) {
    for (const a of document.querySelectorAll(".ranges a")) {
      if (a.dataset.range === range) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    }
  }

  async function load(range) {
    const r = await fetch("/api/carts/" + encodeURIComponent(cart) + "/series?range=" + encodeURIComponent(range),
                          {headers: {"Accept": "application/json"}});
    if (!r.ok) { location.search = "?range=" + encodeURIComponent(range); return; } // the plain page says why
    draw(await r.json());
    select(range);
    history.replaceState(null, "", "?range=" + encodeURIComponent(range));
  }

  for (const a of document.querySelectorAll(".ranges a")) {
    a.addEventListener("click", (ev) => { ev.preventDefault(); load(a.dataset.range); });
  }
  draw(JSON.parse(document.getElementById("series-data").textContent));
})();
