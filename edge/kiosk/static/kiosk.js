// The cart's touch screen.  Renders the screen model pushed by edge/kiosk/server.py (GET /api/events) and
// posts taps (POST /api/action) and typed codes (POST /api/scan); the contract is edge/kiosk/contract.py.
// No workflow logic: which buttons exist, what they are called and what happens next is decided by the
// cart; device states, categories and their colours come from the cart's catalogue (GET /api/catalogue).
// This file only draws it, speaks the voice prompts, and keeps the page's own preferences (language,
// voice on/off).
"use strict";

(() => {
  const RECONNECT_FIRST_MS = 1000;   // first retry after the stream dropped
  const RECONNECT_MAX_MS = 5000;     // retries back off to this: the agent restarts in seconds
  const SILENCE_MS = 40000;          // no event nor ping for this long (server pings every 15 s): reconnect
  const SAVED_SHOW_MS = 5000;        // how long the big "saved" confirmation stays up
  const LOCAL_ERROR_MS = 8000;       // a refused tap's message, shown until the next state or this long
  const TAP_GUARD_MS = 800;          // a second tap on the same button within this is a glove bounce
  const WEDGE_GAP_MS = 80;           // a hand scanner "types" faster than this per key; people do not
  const PIN_MAX = 12;
  const TEXT_MAX = 200;              // a loss described, a reason's words (the cart cuts and checks them)
  // The reason the cart takes only with words (edge.catalogue.VOID_REASONS "OTHER"): OK stays off until
  // some are typed.  The cart checks it again; this only saves a refused round trip.
  const REASON_NEEDS_WORDS = "OTHER";

  const I18N = {
    zh: {
      online: "在线", offline: "离线", unsent: "待上传", rejected: "已拒收", manual: "输入条码", connecting: "正在连接推车…",
      link_lost: "与推车程序的连接已断开，正在重连…", stable: "稳定 ✓", unstable: "未稳定 …",
      no_reading: "无读数", package: "包装编号", category: "类别", weight: "重量",
      no_lines: "还没有登记医废袋", bag: "袋", bags: "袋", total: "合计", collector: "收集人", department: "科室",
      place: "地点", started: "开始", overdue: "已超时", saved: "已保存", ok: "确定", cancel: "取消",
      clear: "清除", pin_title: "请输入 PIN", manual_title: "输入条码（二维码下方的文字）",
      reason_title: "请选择原因", not_delivered: "操作未送达推车，请重试",
      scale: "秤", camera: "相机", printer: "打印机", actuator: "称台", clock_unsynced: "未同步",
      pending: "当前医废袋", voice_on: "语音开", voice_off: "语音关", lang_switch: "EN", edit: "修改",
      printing: "正在打印标签…", editing: "修改中", status: "状态", st_waiting: "待复称", st_ok: "✓ 相符",
      st_deviation: "⚠ 偏差", st_batch: "整批称重", signer: "签字", notes: "备注", components: "主要成分",
      reason_words: "补充说明（选“其他”时必填）", dwell_warn: "即将超时", dwell_over: "已超时",
      where_cart: "交接后未入库", where_storage: "在暂存间", longest: "最长", limit: "上限", hours: "小时",
      word_gap: "", open: "（", close: "）",
    },
    en: {
      online: "Online", offline: "Offline", unsent: "Unsent", rejected: "Rejected", manual: "Enter code", connecting: "Connecting to the cart…",
      link_lost: "Connection to the cart lost, reconnecting…", stable: "Stable ✓", unstable: "Not stable …",
      no_reading: "No reading", package: "Package", category: "Category", weight: "Weight",
      no_lines: "No bags yet", bag: "bag", bags: "bags", total: "Total", collector: "Collector", department: "Department",
      place: "Place", started: "Started", overdue: "Overdue", saved: "Saved", ok: "OK", cancel: "Cancel",
      clear: "Clear", pin_title: "Enter PIN", manual_title: "Enter the code (text under the QR)",
      reason_title: "Choose a reason", not_delivered: "Not delivered to the cart, try again",
      scale: "Scale", camera: "Camera", printer: "Printer", actuator: "Platform", clock_unsynced: "not synced",
      pending: "Current bag", voice_on: "Voice on", voice_off: "Voice off", lang_switch: "中", edit: "Edit",
      printing: "Printing the label…", editing: "editing", status: "Status", st_waiting: "to re-weigh",
      st_ok: "✓ OK", st_deviation: "⚠ deviation", st_batch: "batch", signer: "Signed", notes: "Notes",
      components: "Main components", reason_words: "Details (required for \u201cother\u201d)",
      dwell_warn: "nearly overdue", dwell_over: "overdue", where_cart: "not checked in since the handover",
      where_storage: "in storage", longest: "longest", limit: "limit", hours: "h", word_gap: " ", open: " (",
      close: ")",
    },
  };

  // What a state looks like while the page has no catalogue (GET /api/catalogue failed): as sent, in
  // grey.  One the catalogue does not know stands out instead: the agent and the page disagree.
  const NEUTRAL_LEVEL = "off";
  const UNKNOWN_LEVEL = "warn";
  const NO_COLOR = "#888888";        // a category neither the model nor the catalogue gave a colour
  const KEY_ROWS = ["1234567890", "QWERTYUIOP", "ASDFGHJKL-", "ZXCVBNM._"];

  const $ = (sel, root = document) => root.querySelector(sel);
  const byId = (id) => $(`[data-testid="${id}"]`);

  // Preferences: localStorage may be unavailable (a locked-down profile); then they last for the page.
  const prefs = {
    get(key, fallback) {
      try { const v = window.localStorage.getItem(`wastecart.${key}`); return v === null ? fallback : v; } catch { return fallback; }
    },
    set(key, value) {
      try { window.localStorage.setItem(`wastecart.${key}`, value); } catch { /* not remembered, still applied */ }
    },
  };

  let lang = prefs.get("lang", "zh") === "en" ? "en" : "zh";
  let voiceOn = prefs.get("voice", "on") !== "off";
  let model = null;
  let firstState = true;
  let lastSavedSeq = null;
  let lastVoiceId = null;
  let assets = null;
  let catalogue = null;             // edge/catalogue.py as served at api/catalogue (see loadCatalogue)
  let savedTimer = 0;
  let localErrorTimer = 0;
  let lastStep = null;
  const rendered = {};              // section → key of what is drawn, so taps never land on a replaced node
  const categoryColors = {};        // category → colour last seen in the model's `categories`
  const lastTap = new Map();

  const t = (key) => I18N[lang][key] ?? I18N.zh[key] ?? key;
  const tr = (text) => {
    if (text === null || text === undefined) return "";
    if (typeof text === "string") return text;
    return text[lang] ?? text.zh ?? text.en ?? "";
  };

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k.startsWith("--")) el.style.setProperty(k, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c);
    return el;
  }

  function kg(grams) {
    if (grams === null || grams === undefined || !Number.isFinite(grams)) return "—";
    return (grams / 1000).toFixed(3);
  }

  function bags(n) {
    return `${n} ${t(n === 1 ? "bag" : "bags")}`;
  }

  function textColorOn(hex) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (!m) return "#000";
    const [r, g, b] = m.slice(1).map((x) => parseInt(x, 16) / 255);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 ? "#000" : "#fff";
  }

  function colorOf(category, explicit) {
    return explicit || categoryColors[category] || (catalogue && catalogue.colors[category]) || NO_COLOR;
  }

  function categoryName(category, explicit) {
    return tr(explicit) || (catalogue && tr(catalogue.names[category])) || category;
  }

  // the catalogue --------------------------------------------------------------------------------

  // The fixed facts of edge/catalogue.py: which device states exist and how alarming each is, in
  // words; which clock sources are synced; a storage line's status level; the categories' colours.
  // The page has no table of its own.  Loaded on every (re)connect: an updated agent may bring a
  // new one.  Without it the page still works, showing states as sent (see NEUTRAL_LEVEL).
  async function loadCatalogue() {
    try {
      const res = await fetch("api/catalogue", { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const c = await res.json();
      if (!c || typeof c !== "object" || !c.device_states || typeof c.device_states !== "object") {
        throw new Error("not a catalogue");
      }
      const categories = (Array.isArray(c.categories) ? c.categories : []).filter((x) => x && x.id);
      catalogue = {
        deviceStates: c.device_states,
        clockSynced: new Set(Array.isArray(c.clock_synced) ? c.clock_synced : []),
        lineStatuses: c.line_statuses && typeof c.line_statuses === "object" ? c.line_statuses : {},
        colors: Object.fromEntries(categories.map((x) => [x.id, x.color])),
        names: Object.fromEntries(categories.map((x) => [x.id, { zh: x.zh, en: x.en }])),
      };
    } catch (err) {
      console.warn("no catalogue from the cart, showing device states as sent:", err);
      return;
    }
    for (const section of Object.keys(rendered)) delete rendered[section];  // drawn without it: draw again
    render();
  }

  // A device state → {level, word}: the catalogue's, else as sent.
  function deviceState(state) {
    if (!state) return { level: NEUTRAL_LEVEL, word: "–" };
    if (!catalogue) return { level: NEUTRAL_LEVEL, word: state };
    const known = Object.hasOwn(catalogue.deviceStates, state) ? catalogue.deviceStates[state] : null;
    return known ? { level: known.level, word: tr(known) } : { level: UNKNOWN_LEVEL, word: state };
  }

  function lineLevel(status) {
    if (!catalogue) return NEUTRAL_LEVEL;
    return Object.hasOwn(catalogue.lineStatuses, status) ? catalogue.lineStatuses[status] : UNKNOWN_LEVEL;
  }

  function setBanner(el, text) {
    $(".text", el).textContent = text;
    el.hidden = !text;
  }

  // rendering ------------------------------------------------------------------------------------

  function render() {
    applyStaticText();
    if (!model) return;
    const m = model;
    document.body.dataset.step = m.step || "";
    byId("title").textContent = tr(m.title);
    byId("prompt").textContent = tr(m.prompt);
    byId("prompt").removeAttribute("data-i18n");
    setBanner(byId("error"), m.error ? tr(m.error) : "");
    setBanner(byId("message"), m.message ? tr(m.message) : "");
    renderContext(m);
    renderDwell(m.dwell || []);
    renderWeight(m.weight);
    renderPending(m.pending);
    for (const c of m.categories || []) if (c.color) categoryColors[c.id] = c.color;
    const split = splitActions(m);
    renderCategories(m.categories || [], split.byCategory, m.pending ? m.pending.category : null);
    renderActions(split.rest);
    renderLines(m.lines || [], split.byLine);
    renderTotals(m.totals || []);
    renderDevice(m.device || null);
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  function applyStaticText() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.body.dataset.lang = lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    byId("lang-toggle").textContent = t("lang_switch");
    const voice = byId("voice-toggle");
    voice.setAttribute("aria-pressed", String(voiceOn));
    voice.setAttribute("aria-label", t(voiceOn ? "voice_on" : "voice_off"));
    voice.title = t(voiceOn ? "voice_on" : "voice_off");
    if (!model) renderDevice(null);
  }

  function renderContext(m) {
    const el = byId("context");
    const parts = [];
    // A name as the roster has it, its code small beside (the code alone when the cart has no name).
    const add = (label, name, code, testid) => {
      const shown = name || code;
      if (shown === null || shown === undefined || shown === "") return;
      if (parts.length) parts.push(" · ");
      const bits = [h("b", { text: shown })];
      if (code && name && code !== name) bits.push(" ", h("small", { class: "code", text: code }));
      parts.push(`${t(label)} `, h("span", { "data-testid": testid }, ...bits));
    };
    add("collector", m.collector_name, m.collector, "ctx-collector");
    add("department", m.department_name, m.department, "ctx-department");
    add("place", m.place_name, m.place, "ctx-place");
    add("signer", m.signer, null, "ctx-signer");
    if (m.round_started_at) {
      const d = new Date(m.round_started_at);
      add("started", Number.isNaN(d.getTime()) ? m.round_started_at : d.toTimeString().slice(0, 5), null, "ctx-started");
    }
    if (m.round_overdue) {
      parts.push(" · ", h("span", { class: "overdue", "data-testid": "overdue", text: `⚠ ${t("overdue")}` }));
    }
    el.replaceChildren(...parts);
  }

  // Bags near or past their time limit (on the cart since the handover, or in storage): one row per
  // place, the bags counted at the worst level there and the longest stay against its limit (that
  // bag's code in data-package; one line, so the buttons stay on the screen); the banner is red when
  // any is over, else yellow.  The cart decides the levels; this only draws them.
  function renderDwell(dwell) {
    const el = byId("dwell");
    const groups = new Map();
    for (const d of dwell) {
      if (!d || !d.where) continue;
      const g = groups.get(d.where) || { where: d.where, over: [], warn: [] };
      (d.level === "over" ? g.over : g.warn).push(d);
      groups.set(d.where, g);
    }
    const rows = [...groups.values()].map((g) => {
      const level = g.over.length ? "over" : "warn";
      const worst = g.over.length ? g.over : g.warn;
      const longest = worst.reduce((a, b) => (b.hours > a.hours ? b : a));
      return h("div", {
        class: "dwell-row", "data-testid": "dwell-row", "data-where": g.where, "data-level": level,
        "data-package": longest.package_code, title: longest.package_code,
      },
      h("span", { "aria-hidden": "true", text: "⚠ " }),
      h("b", { class: "count", text: `${bags(worst.length)}${t("word_gap")}${t(`dwell_${level}`)}` }),
      h("span", { text: ` · ${t(`where_${g.where}`)} · ${t("longest")} ` }),
      h("b", { class: "hours", text: `${longest.hours} ${t("hours")}` }),
      h("span", { text: `${t("open")}${t("limit")} ${longest.limit_h} ${t("hours")}${t("close")}` }));
    });
    el.dataset.level = rows.some((r) => r.dataset.level === "over") ? "over" : rows.length ? "warn" : "";
    el.replaceChildren(...rows);
    el.hidden = rows.length === 0;
  }

  function renderWeight(w) {
    const box = byId("weight");
    const value = byId("weight-value");
    const state = byId("weight-state");
    if (!w) {
      box.dataset.stable = "none";
      value.textContent = "—";
      state.textContent = t("no_reading");
    } else if (w.error) {
      box.dataset.stable = "error";
      value.textContent = kg(w.net_g);
      state.textContent = `✖ ${tr(w.error)}`;
    } else if (w.net_g === null || w.net_g === undefined) {
      box.dataset.stable = "none";
      value.textContent = "—";
      state.textContent = t("no_reading");
    } else {
      box.dataset.stable = w.stable ? "true" : "false";
      value.textContent = kg(w.net_g);
      state.textContent = w.stable ? t("stable") : t("unstable");
    }
  }

  function renderPending(p) {
    const el = byId("pending");
    if (!p) { el.hidden = true; el.replaceChildren(); return; }
    const bits = [h("span", { text: `${t("pending")}: ` })];
    if (p.package_code) bits.push(h("b", { text: `${p.package_code} ` }));
    if (p.category_name) bits.push(h("span", { text: `${tr(p.category_name)} ` }));
    if (p.weight_g !== undefined && p.weight_g !== null) bits.push(h("b", { text: `${kg(p.weight_g)} kg ` }));
    const notes = Array.isArray(p.notes) ? p.notes.map(tr).filter(Boolean) : [];
    if (notes.length) {
      bits.push(h("span", { class: "flag", "data-testid": "pending-notes", text: `${t("notes")}: ${notes.join("；")} ` }));
    }
    if (p.components) {
      bits.push(h("span", { class: "flag", "data-testid": "pending-components", text: `${t("components")}: ${p.components} ` }));
    }
    if (p.editing) bits.push(h("span", { class: "flag", text: `✎ ${t("editing")} ` }));
    if (p.printing) bits.push(h("span", { class: "flag", "data-testid": "printing", text: `⎙ ${t("printing")}` }));
    el.replaceChildren(...bits);
    el.hidden = false;
  }

  function sameAsDrawn(section, data) {
    const key = `${lang}|${JSON.stringify(data)}`;
    if (rendered[section] === key) return true;
    rendered[section] = key;
    return false;
  }

  // An action whose id ends in ":<a category id shown>" or ":<a line's package code>" is drawn as
  // that category's button or on that line, not a second time among the buttons (ids stay opaque:
  // the page posts them unchanged).
  function splitActions(m) {
    const categories = new Set((m.categories || []).map((c) => c.id));
    const codes = new Set((m.lines || []).map((ln) => ln.package_code));
    const byCategory = {};
    const byLine = {};
    const rest = [];
    for (const a of m.actions || []) {
      const i = typeof a.id === "string" ? a.id.indexOf(":") : -1;
      const arg = i >= 0 ? a.id.slice(i + 1) : null;
      if (arg !== null && !a.needs && categories.has(arg) && !byCategory[arg]) byCategory[arg] = a;
      else if (arg !== null && !a.needs && codes.has(arg) && !byLine[arg]) byLine[arg] = a;
      else rest.push(a);
    }
    return { byCategory, byLine, rest };
  }

  function renderCategories(categories, byCategory, chosen) {
    if (sameAsDrawn("categories", [categories, byCategory, chosen])) return;
    const el = byId("categories");
    el.replaceChildren(...categories.map((c) => {
      const color = colorOf(c.id, c.color);
      const own = c.action || (byCategory[c.id] && byCategory[c.id].id);
      return h("button", {
        type: "button", class: c.id === chosen ? "category chosen" : "category", "data-testid": `category-${c.id}`,
        "data-category": c.id, "aria-pressed": String(c.id === chosen),
        "data-action": own || "choose", "--cat": color, "--cat-text": textColorOn(color), text: tr(c.name),
        onclick: (ev) => tap(ev.currentTarget, own || "choose", own ? null : c.id),
      });
    }));
    el.hidden = categories.length === 0;
  }

  // A label note ("note:<id>") is a toggle: pressed while its style is "chosen" (the cart says which
  // are on; a tap posts the id and the next state shows the change).
  function renderActions(actions) {
    if (sameAsDrawn("actions", actions)) return;
    byId("actions").replaceChildren(...actions.map((a) => {
      const toggle = typeof a.id === "string" && a.id.startsWith("note:");
      const on = a.style === "chosen";
      const style = ["primary", "danger"].includes(a.style) ? a.style : "normal";
      return h("button", {
        type: "button", class: `btn ${style}${toggle ? " toggle" : ""}${on ? " chosen" : ""}`,
        "data-testid": `action-${a.id}`, "data-action": a.id, "data-needs": a.needs || null,
        "aria-pressed": toggle ? String(on) : null, text: toggle ? `${on ? "☑" : "☐"} ${tr(a.label)}` : tr(a.label),
        onclick: (ev) => onAction(ev.currentTarget, a),
      });
    }));
  }

  function renderLines(lines, byLine) {
    if (sameAsDrawn("lines", [lines, byLine])) return;
    const table = byId("lines");
    const withStatus = lines.some((ln) => ln.status);
    const withEdit = lines.some((ln) => byLine[ln.package_code]);
    table.dataset.status = String(withStatus);
    $(".col-status", table).hidden = !withStatus;
    $(".col-edit", table).hidden = !withEdit;
    const rows = lines.map((ln, i) => {
      const color = colorOf(ln.category, ln.color);
      const edit = byLine[ln.package_code];
      const level = lineLevel(ln.status);
      return h("tr", {
        "data-testid": "line", "data-package": ln.package_code, "data-status": ln.status || null,
        class: i === lines.length - 1 ? "newest" : null,
      },
      h("td", { class: "n", text: String(i + 1) }),
      h("td", { class: "code", text: ln.package_code }),
      h("td", { "data-category": ln.category }, h("span", { class: "swatch", "--cat": color }),
        categoryName(ln.category, ln.category_name)),
      h("td", { class: "w", text: `${kg(ln.weight_g)} kg` }),
      withStatus ? h("td", { class: "st" }, ln.status ? h("span", {
        class: "pill", "data-level": level, text: I18N[lang][`st_${ln.status}`] || ln.status,
      }) : null) : null,
      withEdit ? h("td", { class: "ed" }, edit ? h("button", {
        type: "button", class: "btn normal edit", "data-testid": `edit-${ln.package_code}`, "data-action": edit.id,
        "aria-label": tr(edit.label), title: tr(edit.label), text: `✎ ${t("edit")}`,
        onclick: (ev) => tap(ev.currentTarget, edit.id, null),
      }) : null) : null);
    });
    $("tbody", table).replaceChildren(...rows.reverse());  // newest on top: always in view without scrolling
    byId("lines-empty").hidden = lines.length > 0;
  }

  function renderTotals(totals) {
    if (sameAsDrawn("totals", totals)) return;
    const chips = totals.map((tot) => h("div", {
      class: "total", "data-testid": "total", "data-category": tot.category, "--cat": colorOf(tot.category, tot.color),
    }, h("span", { text: categoryName(tot.category, tot.category_name) }),
    h("b", { class: "count", text: bags(tot.count) }),
    h("b", { class: "kg", text: `${kg(tot.weight_g)} kg` })));
    if (totals.length > 1) {
      const count = totals.reduce((s, x) => s + (x.count || 0), 0);
      const grams = totals.reduce((s, x) => s + (x.weight_g || 0), 0);
      chips.push(h("div", { class: "total grand", "data-testid": "total-all" },
        h("span", { text: t("total") }), h("b", { text: bags(count) }), h("b", { text: `${kg(grams)} kg` })));
    }
    byId("totals").replaceChildren(...chips);
  }

  function renderDevice(d) {
    const linkUp = document.body.dataset.link === "up";
    const online = byId("online");
    const isOnline = Boolean(linkUp && d && d.online);
    online.dataset.level = isOnline ? "ok" : "bad";
    online.dataset.online = String(isOnline);
    $("b", online).textContent = isOnline ? `● ${t("online")}` : `○ ${t("offline")}`;

    const unsent = byId("unsent");
    const n = d && Number.isFinite(d.unsent) ? d.unsent : null;
    unsent.dataset.unsent = n === null ? "" : String(n);
    unsent.dataset.level = n === null || !linkUp ? "off" : n > 0 ? "warn" : "ok";
    $(".num", unsent).textContent = n === null ? "–" : String(n);

    // Records the gateway refused for good: never sent again, someone has to look (edge ledger).
    const rejected = byId("rejected");
    const r = d && Number.isFinite(d.rejected) ? d.rejected : 0;
    rejected.hidden = r <= 0;
    $(".num", rejected).textContent = String(r);

    for (const el of document.querySelectorAll("[data-device]")) {
      const dev = el.dataset.device;
      const state = d && typeof d[dev] === "string" ? d[dev] : "";
      const shown = deviceState(state);
      el.dataset.state = state;
      el.dataset.level = !linkUp ? "off" : shown.level;
      el.textContent = `${t(dev)} ${shown.word}`;
    }
    const clock = byId("clock");
    const source = d && d.clock ? d.clock : "";
    const synced = source && catalogue ? catalogue.clockSynced.has(source) : null;  // null: cannot tell
    clock.dataset.source = source;
    clock.dataset.level = synced === null ? "off" : synced ? "ok" : "warn";
    $(".sync", clock).textContent = synced === false ? `⚠ ${t("clock_unsynced")}` : "";
  }

  function tickClock() {
    const now = new Date();
    $(".time", byId("clock")).textContent = now.toTimeString().slice(0, 8);
  }

  // the saved confirmation and voice -------------------------------------------------------------

  function onNewState(m) {
    const seq = m.saved_seq ?? null;
    if (!firstState && seq !== null && seq !== lastSavedSeq) showSaved(seq);
    lastSavedSeq = seq;
    if (m.voice && m.voice.id !== lastVoiceId) {
      lastVoiceId = m.voice.id;
      if (voiceOn) speak(tr(m.voice));
    }
    firstState = false;
  }

  function showSaved(seq) {
    const el = byId("saved");
    $(".text", el).textContent = `${t("saved")} #${seq}`;
    el.dataset.seq = String(seq);
    el.hidden = false;
    window.clearTimeout(savedTimer);
    savedTimer = window.setTimeout(() => { el.hidden = true; }, SAVED_SHOW_MS);
  }

  function speak(text) {
    document.body.dataset.voiceId = String(lastVoiceId);
    const synth = window.speechSynthesis;
    if (!text || !synth || typeof window.SpeechSynthesisUtterance !== "function") return;
    try {
      synth.cancel();  // a new step's prompt replaces an old one still being read
      const u = new window.SpeechSynthesisUtterance(text);
      u.lang = lang === "zh" ? "zh-CN" : "en-US";
      const voices = typeof synth.getVoices === "function" ? synth.getVoices() || [] : [];
      const prefix = lang === "zh" ? "zh" : "en";
      const voice = voices.find((v) => v.lang === u.lang) || voices.find((v) => (v.lang || "").startsWith(prefix));
      if (voice) u.voice = voice;
      synth.speak(u);
    } catch (err) {
      console.warn("voice prompt failed:", err);  // no voice is never a reason to stop the screen
    }
  }

  // taps -----------------------------------------------------------------------------------------

  function bounced(key) {
    const now = Date.now();
    const last = lastTap.get(key) || 0;
    lastTap.set(key, now);
    return now - last < TAP_GUARD_MS;
  }

  function onAction(button, action) {
    if (action.needs === "pin") openPad({ mode: "pin", title: tr(action.label) || t("pin_title"), action });
    else if (action.needs === "text") openPad({ mode: "text", title: tr(action.label), action });
    else if (action.needs === "reason") openPad({ mode: "reason", title: tr(action.label) || t("reason_title"), action });
    else if (!bounced(`action:${action.id}`)) send(button, "/api/action", { id: action.id });
  }

  function tap(button, id, value) {
    if (bounced(`action:${id}:${value}`)) return;
    send(button, "/api/action", value === null ? { id } : { id, value });
  }

  async function post(path, body) {
    let res;
    try {
      res = await fetch(path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), cache: "no-store",
      });
    } catch {
      return t("not_delivered");
    }
    if (res.ok) return null;
    try {
      const j = await res.json();
      return j && j.error ? String(j.error) : `${t("not_delivered")} (${res.status})`;
    } catch {
      return `${t("not_delivered")} (${res.status})`;
    }
  }

  async function send(button, path, body) {
    if (button) button.classList.add("sending");
    const problem = await post(path, body);
    if (button) button.classList.remove("sending");
    showLocalError(problem);
    return problem;
  }

  function showLocalError(text) {
    window.clearTimeout(localErrorTimer);
    setBanner(byId("local-error"), text || "");
    if (text) localErrorTimer = window.setTimeout(() => setBanner(byId("local-error"), ""), LOCAL_ERROR_MS);
  }

  // keypad / keyboard / reasons ------------------------------------------------------------------

  let pad = null;  // {mode, title, action, reason}

  function openPad(spec) {
    pad = { ...spec, reason: null };
    const overlay = byId("pad");
    const box = $(".pad", overlay);
    box.classList.toggle("pin", spec.mode === "pin");
    overlay.dataset.mode = spec.mode;
    byId("pad-title").textContent = spec.title || "";
    const field = byId("pad-field");
    field.value = "";
    field.type = spec.mode === "pin" ? "password" : "text";
    field.maxLength = spec.mode === "pin" ? PIN_MAX : TEXT_MAX;
    field.inputMode = spec.mode === "pin" ? "numeric" : "none";
    padError("");
    // The reasons the cart lists (a void): one is chosen, words may be added under them, posted as
    // "ID" or "ID|words".  With no list the typed words are posted as they are.
    const reasons = byId("pad-reasons");
    const list = spec.mode === "reason" && Array.isArray(spec.action.reasons) ? spec.action.reasons : [];
    pad.reasons = list.length > 0;
    reasons.replaceChildren(...list.map((r) => h("button", {
      type: "button", class: "btn normal reason", "data-testid": `reason-${r.id}`, "data-reason": r.id, text: tr(r),
      "aria-pressed": "false", onclick: (ev) => chooseReason(ev.currentTarget, r.id),
    })));
    reasons.hidden = !pad.reasons;
    field.placeholder = pad.reasons ? t("reason_words") : "";
    renderKeys(spec.mode === "pin");
    overlay.hidden = false;
    updateOk();
    field.focus();
  }

  function chooseReason(button, id) {
    for (const b of byId("pad-reasons").querySelectorAll(".reason")) {
      b.classList.toggle("chosen", b === button);
      b.setAttribute("aria-pressed", String(b === button));
    }
    pad.reason = id;
    byId("pad-field").focus();
    updateOk();
  }

  function renderKeys(pin) {
    const key = (label, value, cls = "key") => h("button", {
      type: "button", class: cls, "data-key": value, text: label, onclick: () => press(value),
    });
    const keys = pin
      ? [..."123456789"].map((d) => key(d, d)).concat([key(t("clear"), "CLEAR", "key fn"), key("0", "0"), key("⌫", "BACK", "key fn")])
      : KEY_ROWS.flatMap((row) => [...row].map((c) => key(c, c))).concat([key("⌫", "BACK", "key fn")]);
    byId("pad-keys").replaceChildren(...keys);
  }

  function press(value) {
    const field = byId("pad-field");
    if (value === "BACK") field.value = field.value.slice(0, -1);
    else if (value === "CLEAR") field.value = "";
    else if (field.value.length < field.maxLength) field.value += value;
    padError("");
    updateOk();
  }

  function padValue() {
    if (!pad) return "";
    const words = byId("pad-field").value.trim();
    if (!pad.reasons) return words;
    if (pad.reason === null || (pad.reason === REASON_NEEDS_WORDS && !words)) return "";
    return words ? `${pad.reason}|${words}` : pad.reason;
  }

  function updateOk() {
    byId("pad-ok").disabled = !padValue();
  }

  function padError(text) {
    const el = byId("pad-error");
    el.textContent = text;
    el.hidden = !text;
  }

  function closePad() {
    pad = null;
    byId("pad").hidden = true;
    byId("pad-field").value = "";
  }

  async function submitPad() {
    if (!pad || pad.busy) return;  // a second tap while the first is on its way
    const value = padValue();
    if (!value) return;
    const current = pad;
    current.busy = true;
    const problem = current.mode === "scan"
      ? await post("/api/scan", { text: value })
      : await post("/api/action", { id: current.action.id, value });
    current.busy = false;
    if (pad !== current) return;  // closed meanwhile
    if (problem) padError(problem);
    else closePad();
  }

  // a hand scanner that types like a keyboard (USB HID "keyboard wedge") --------------------------

  let wedge = "";
  let wedgeAt = 0;

  function onKey(ev) {
    const target = ev.target;
    if (ev.key === "Escape" && pad) { closePad(); return; }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) {
      if (ev.key === "Enter" && pad) { ev.preventDefault(); submitPad(); }
      return;
    }
    const now = Date.now();
    if (now - wedgeAt > WEDGE_GAP_MS) wedge = "";
    wedgeAt = now;
    if (ev.key === "Enter") {
      const text = wedge;
      wedge = "";
      if (text.length >= 3) { ev.preventDefault(); send(null, "/api/scan", { text }); }
    } else if (ev.key.length === 1) {
      wedge += ev.key;
    }
  }

  // the event stream -----------------------------------------------------------------------------

  let source = null;
  let retryMs = RECONNECT_FIRST_MS;
  let retryTimer = 0;
  let silenceTimer = 0;

  function setLink(state) {
    document.body.dataset.link = state;
    byId("link-lost").hidden = state !== "down";
    renderDevice(model ? model.device || null : null);
  }

  function heard() {
    window.clearTimeout(silenceTimer);
    silenceTimer = window.setTimeout(() => dropped(), SILENCE_MS);
  }

  function connect() {
    window.clearTimeout(retryTimer);
    if (source) source.close();
    source = new EventSource("api/events");
    source.addEventListener("open", heard);
    source.addEventListener("hello", (ev) => {
      heard();
      let info = null;
      try { info = JSON.parse(ev.data); } catch { return; }
      if (assets !== null && info.assets && info.assets !== assets) { window.location.reload(); return; }
      assets = info.assets || assets;
      loadCatalogue();
    });
    source.addEventListener("state", (ev) => {
      heard();
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { console.warn("bad state from the cart:", err); return; }
      model = m;
      retryMs = RECONNECT_FIRST_MS;
      if (document.body.dataset.link !== "up") setLink("up");
      if (m.step !== lastStep) showLocalError("");  // a refused tap's message belongs to the old screen
      if (pad && pad.action && !(m.actions || []).some((a) => a.id === pad.action.id)) closePad();  // moved on
      lastStep = m.step;
      onNewState(m);
      render();
    });
    source.addEventListener("ping", heard);  // the ": ping" comment is invisible here; its event is not
    source.addEventListener("error", () => dropped());
  }

  function dropped() {
    window.clearTimeout(silenceTimer);
    if (source) { source.close(); source = null; }
    setLink("down");
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
  }

  // wiring ---------------------------------------------------------------------------------------

  function init() {
    byId("lang-toggle").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      prefs.set("lang", lang);
      render();
    });
    byId("voice-toggle").addEventListener("click", () => {
      voiceOn = !voiceOn;
      prefs.set("voice", voiceOn ? "on" : "off");
      if (!voiceOn && window.speechSynthesis) {
        try { window.speechSynthesis.cancel(); } catch { /* nothing to stop */ }
      }
      render();
    });
    byId("manual-open").addEventListener("click", () => openPad({ mode: "scan", title: t("manual_title"), action: null }));
    byId("pad-cancel").addEventListener("click", closePad);
    byId("pad-ok").addEventListener("click", submitPad);
    byId("pad-clear").addEventListener("click", () => press("CLEAR"));
    byId("pad-field").addEventListener("input", () => { padError(""); updateOk(); });
    byId("saved").addEventListener("click", (ev) => { ev.currentTarget.hidden = true; });
    document.addEventListener("keydown", onKey);
    document.addEventListener("contextmenu", (ev) => ev.preventDefault());  // a long press is not a right click
    render();
    tickClock();
    window.setInterval(tickClock, 1000);
    connect();
  }

  init();
})();
