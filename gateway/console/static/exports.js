// The exports page: redraws the jobs table from /api/exports about once a second while an export is
// waiting or running (progress bars, then the download link); the page as served works without it.
"use strict";
(function () {
  const T = JSON.parse(document.getElementById("export-texts").textContent);
  const rows = document.getElementById("export-rows");
  const table = document.querySelector("[data-testid=export-jobs]");
  const none = document.querySelector("[data-testid=export-none]");
  const EVERY_MS = 1000;

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function row(j) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", "export-job");
    tr.dataset.id = j.id;
    tr.dataset.state = j.state;
    cell(tr, j.created_text);
    cell(tr, j.user);
    cell(tr, j.format);
    const filter = Object.entries(j.filter).map(([k, v]) => k + "=" + v).join(" ");
    cell(tr, filter || T.all);
    const progress = cell(tr, "");
    const bar = document.createElement("progress");
    bar.max = j.total || 1;
    bar.value = j.done;
    progress.appendChild(bar);
    progress.appendChild(document.createTextNode(" " + T[j.state] + (j.error ? ": " + j.error : "")));
    const file = cell(tr, "");
    if (j.download) {
      const a = document.createElement("a");
      a.href = j.download;
      a.setAttribute("download", "");
      a.setAttribute("data-testid", "export-download");
      a.textContent = T.download + " " + j.filename + " (" + T.rows.replace("{n}", j.rows) + ")";
      file.appendChild(a);
    }
    return tr;
  }

  function draw(jobs) {
    rows.replaceChildren(...jobs.map(row));
    table.hidden = jobs.length === 0;
    none.hidden = jobs.length !== 0;
  }

  function busy(jobs) { return jobs.some((j) => j.state === "waiting" || j.state === "running"); }

  async function poll() {
    try {
      const answer = await fetch("/api/exports", {headers: {"Accept": "application/json"}});
      if (answer.ok) {
        const jobs = (await answer.json()).jobs;
        draw(jobs);
        if (!busy(jobs)) return;
      }
    } catch (e) { /* the gateway restarting: try again */ }
    setTimeout(poll, EVERY_MS);
  }

  const first = JSON.parse(document.getElementById("export-data").textContent);
  draw(first);
  if (busy(first)) setTimeout(poll, EVERY_MS);
})();
