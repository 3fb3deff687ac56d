// The cart page's remote commands: the forms are sent with fetch (the answer shown at once, no
// reload), and the list of commands sent to this cart is read from /api/carts/{cart}/commands,
// again every 1.5 s while a command waits for the cart's answer, every 10 s otherwise.  Without
// script the forms still post (and come back to this page).
"use strict";
(function () {
  const box = document.getElementById("commands");
  if (!box) return;
  const cart = box.dataset.cart;
  const T = JSON.parse(document.getElementById("cmd-texts").textContent);
  const status = box.querySelector(".cmd-status");
  const table = box.querySelector(".cmd-list");
  const none = box.querySelector('[data-testid="cmd-none"]');
  const fields = box.querySelector(".cmd-config-fields");
  const WAITING_S = 1500, IDLE_S = 10000; // ms between polls
  let timer = null;

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function args(a) {
    return Object.entries(a).map(([k, v]) => k + "=" + v).join(", ") || "-";
  }

  function row(c) {
    const tr = el("tr", null, {"data-testid": "cmd-row-" + c.counter, "data-outcome": c.outcome || "waiting"});
    tr.append(el("td", c.counter), el("td", T[c.name] || c.name), el("td", args(c.args)),
              el("td", c.requested_by || T.by_gateway), el("td", c.sent));
    const result = el("td", null, {"data-testid": "cmd-result-" + c.counter, "class": "wrap"});
    const word = el("strong", c.outcome ? (T[c.outcome] || c.outcome) : T.waiting,
                    {"class": "cmd-" + (c.outcome || "waiting"), "data-testid": "cmd-outcome-" + c.counter});
    result.append(word);
    if (c.reason) result.append(" " + c.reason);
    if (c.outcome) result.append(el("small", " " + c.answered));
    tr.append(result);
    return tr;
  }

  function configFields(config) {
    if (!fields || fields.childElementCount) return;
    for (const [key, r] of Object.entries(config)) {
      const label = el("label", (T["field_" + key] || key) + " ");
      label.append(el("input", null, {name: key, type: "number", min: r.min, max: r.max, step: "1",
                                      "data-testid": "cmd-config-" + key}));
      label.append(el("small", " " + T.range.replace("{low}", r.min).replace("{high}", r.max)));
      label.append(el("small", "", {"data-last": key}));
      fields.append(label);
    }
  }

  function lastSet(config) {
    if (!fields) return;
    for (const [key, r] of Object.entries(config)) {
      const small = fields.querySelector('[data-last="' + key + '"]');
      if (small) small.textContent = r.last === null ? "" : " · " + T.last_set.replace("{value}", r.last);
    }
  }

  async function load() {
    clearTimeout(timer);
    let waiting = false;
    try {
      const r = await fetch("/api/carts/" + encodeURIComponent(cart) + "/commands",
                            {headers: {"Accept": "application/json"}});
      if (r.ok) {
        const data = await r.json();
        configFields(data.config);
        lastSet(data.config);
        table.tBodies[0].replaceChildren(...data.commands.map(row));
        table.hidden = data.commands.length === 0;
        none.hidden = data.commands.length !== 0;
        waiting = data.commands.some((c) => !c.outcome);
      }
    } finally {
      timer = setTimeout(load, waiting ? WAITING_S : IDLE_S);
    }
  }

  function say(text, ok) {
    if (!status) return;
    status.textContent = text;
    status.className = "cmd-status " + (ok ? "ok" : "error");
  }

  for (const form of box.querySelectorAll("form")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = new URLSearchParams(new FormData(form));
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const r = await fetch(form.action, {method: "POST", body: body, headers: {
          "Accept": "application/json", "X-CSRF-Token": body.get("csrf") || ""}});
        const answer = await r.json().catch(() => ({error: r.status + " " + r.statusText}));
        say(answer.message || answer.error || String(r.status), r.ok);
        if (r.ok) {
          for (const input of form.querySelectorAll("input:not([type=hidden])")) input.value = "";
        }
      } catch (err) {
        say(String(err), false);
      } finally {
        button.disabled = false;
        load();
      }
    });
  }
  load();
})();
