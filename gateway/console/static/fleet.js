// The fleet table: rendered from the JSON the server embeds, then from every SSE "fleet" event.
// Sorting and filtering are client-side; the labels come from the server's catalogue (#fleet-texts).
"use strict";
(function () {
  const T = JSON.parse(document.getElementById("fleet-texts").textContent);
  const COLS = ["cart", "site", "state", "since", "last_seen", "backlog", "oldest_unsent_s", "disk_free_mb",
                "clock", "scale", "camera", "printer", "actuator", "handovers_today", "kg_today", "version", "boot"];
  const RETRY_MS = 2000; // ms: reconnect delay after the stream dropped (EventSource's own is ~3 s)
  let data = JSON.parse(document.getElementById("fleet-data").textContent || "{}");
  let skew = 0; // s: browser clock minus server clock, so "since" ages are the server's
  let sortKey = "site", sortDir = 1;
  const tbody = document.getElementById("fleet-rows");
  const siteSel = document.getElementById("filter-site");
  const stateSel = document.getElementById("filter-state");
  const live = document.getElementById("live");

  function ago(ts) {
    if (ts === null || ts === undefined) return "-";
    const s = Math.max(0, Math.round(Date.now() / 1000 - skew - ts));
    if (s < 120) return s + " " + T.seconds;
    if (s < 7200) return Math.round(s / 60) + " " + T.minutes;
    return new Date(ts * 1000).toLocaleString();
  }
  function text(row, key) {
    const v = row[key];
    switch (key) {
      case "state": return T["state_" + v] || v;
      case "since": case "last_seen": return ago(v);
      case "oldest_unsent_s": return v === null || v === undefined ? "-" : Math.round(v / 60) + " " + T.minutes;
      case "disk_free_mb": return v === null || v === undefined ? "-" : v + " " + T.mb;
      case "clock": return v ? v + (row.clock_offset_ms === null || row.clock_offset_ms === undefined ? ""
                                    : " (" + row.clock_offset_ms + " ms)") : "-";
      case "boot": return v ? v.slice(-8) : "-";
      case "kg_today": return v === null || v === undefined ? "-" : v.toFixed(1);
      default: return v === null || v === undefined ? "-" : String(v);
    }
  }
  function fault(row, key) {
    const v = row[key];
    if (["scale", "camera", "printer"].includes(key)) return v && !["ok", "connected"].includes(v);
    if (key === "clock") return v && !["ntp", "synced", "gps", "rtc"].includes(v);
    return false;
  }
  function compare(a, b) {
    const x = a[sortKey], y = b[sortKey];
    if (x === y) return a.cart < b.cart ? -1 : 1;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sortDir;
  }
  function fillSites(carts) {
    const chosen = siteSel.value;
    const sites = [...new Set(carts.map((c) => c.site))].sort();
    while (siteSel.options.length > 1) siteSel.remove(1);
    for (const s of sites) siteSel.add(new Option(s, s));
    siteSel.value = sites.includes(chosen) ? chosen : "";
  }
  function render() {
    const carts = data.carts || [];
    fillSites(carts);
    const rows = carts.filter((c) => (!siteSel.value || c.site === siteSel.value) &&
                                     (!stateSel.value || c.state === stateSel.value)).sort(compare);
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "cart-" + row.cart;
      tr.setAttribute("data-testid", "cart-" + row.cart);
      tr.dataset.state = row.state;
      tr.className = "state-" + row.state;
      for (const key of COLS) {
        const td = document.createElement("td");
        if (key === "cart") {
          const a = document.createElement("a");
          a.href = "/carts/" + encodeURIComponent(row.cart);
          a.textContent = row.cart;
          td.appendChild(a);
        } else {
          td.textContent = text(row, key);
        }
        td.dataset.col = key;
        if (fault(row, key)) td.className = "fault";
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    document.getElementById("fleet-empty").hidden = carts.length > 0;
    document.body.dataset.carts = String(carts.length);
  }
  function take(payload) {
    data = payload;
    skew = Date.now() / 1000 - (payload.now || Date.now() / 1000);
    render();
  }
  function setLive(up) {
    live.dataset.state = up ? "up" : "down";
    live.textContent = up ? T.live_up : T.live_down;
    document.body.dataset.live = up ? "up" : "down";
  }
  function connect() {
    const es = new EventSource("/api/fleet/events");
    es.addEventListener("open", () => setLive(true));
    es.addEventListener("fleet", (ev) => { setLive(true); take(JSON.parse(ev.data)); });
    es.addEventListener("error", () => {
      setLive(false);
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, RETRY_MS);
    });
  }
  for (const btn of document.querySelectorAll("button.sort")) {
    btn.addEventListener("click", () => {
      const key = btn.dataset.key;
      sortDir = key === sortKey ? -sortDir : 1;
      sortKey = key;
      render();
    });
  }
  siteSel.addEventListener("change", render);
  stateSel.addEventListener("change", render);
  if (data.now) take(data); else render();
  setInterval(render, 10000); // ms: ages ("12 s") move on between events
  connect();
})();
