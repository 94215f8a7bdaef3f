// The facility page: sign-in (token in sessionStorage, sent as a bearer header, never in a URL),
// server-rendered fragments, the uPlot chart and the live feed (/ui/stream, read with fetch).
"use strict";
(function () {
  const KEY = "gridlink.token";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const state = { hours: 6, aheadH: Math.min(6, +document.body.dataset.horizonH || 6),
    power: { t: [], kw: [] }, limit: [], now: Date.now() / 1000, chart: null, abort: null,
    retryMs: 2000, canWrite: false };
  window.gridlinkPage = state; // for the browser tests and the curious

  const token = () => sessionStorage.getItem(KEY);
  const auth = (extra) => Object.assign({ Authorization: "Bearer " + token() }, extra || {});
  const api = (path, opts) => fetch(path, Object.assign({}, opts, { headers: auth((opts || {}).headers) }));
  const kw = (v) => (v === null || v === undefined ? "–" : v.toFixed(v < 100 ? 2 : 1) + " kW");

  // -- sign-in --------------------------------------------------------------------------------
  async function signIn(candidate) {
    const r = await fetch("/ui/session", { headers: { Authorization: "Bearer " + candidate } });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      const why = r.status === 401 ? "invalid or revoked token" : (body.detail || r.statusText);
      throw new Error(why);
    }
    return r.json();
  }

  async function start(who) {
    $("#signin").hidden = true;
    $("#app").hidden = false;
    $("#who").hidden = false;
    $("#who-name").textContent = who.name;
    $("#who-role").textContent = who.role;
    state.canWrite = who.can_write;
    await Promise.all([loadFragment("nodes"), loadFragment("events"), loadFragment("form"),
      loadReports(), loadHistory()]);
    follow();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    if (state.abort) state.abort.abort();
    $("#app").hidden = true;
    $("#who").hidden = true;
    $("#signin").hidden = false;
    $("#signin-error").textContent = message || "";
  }

  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const candidate = $("#token").value.trim();
    try {
      const who = await signIn(candidate);
      sessionStorage.setItem(KEY, candidate);
      $("#token").value = "";
      await start(who);
    } catch (err) {
      $("#signin-error").textContent = "Cannot sign in: " + err.message;
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());

  // -- fragments ------------------------------------------------------------------------------
  async function loadFragment(name) {
    const r = await api("/ui/fragments/" + name);
    if (r.status === 401) return signOut("Your token is no longer valid.");
    $("#" + name).innerHTML = await r.text();
  }

  async function loadReports() {
    await loadFragment("reports");
    const list = $("#reports-list");
    if (!list || !list.dataset.api) return;
    const r = await api(list.dataset.api);
    if (!r.ok) { list.textContent = "Reports unavailable (" + r.status + ")."; return; }
    const body = await r.json();
    const items = Array.isArray(body) ? body : (body.items || body.reports || []);
    if (!items.length) { list.textContent = "No reports yet."; return; }
    list.innerHTML = "";
    const ul = document.createElement("ul");
    for (const item of items) {
      const li = document.createElement("li");
      const label = item.subject + " v" + item.version + " (" + item.window_start + " to " +
        item.window_end + ", " + item.interval_s / 60 + "-min intervals)";
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Open";
      open.addEventListener("click", () => openReport(list.dataset.api + "/" + item.id + "?format=html"));
      li.textContent = label + " ";
      li.appendChild(open);
      ul.appendChild(li);
    }
    list.appendChild(ul);
  }

  async function openReport(path) {
    const r = await api(path, { headers: { Accept: "text/html" } });
    const blob = new Blob([await r.text()], { type: r.headers.get("content-type") || "text/html" });
    window.open(URL.createObjectURL(blob), "_blank");
  }

  // -- chart ----------------------------------------------------------------------------------
  async function loadHistory() {
    const r = await api("/ui/history?hours=" + state.hours + "&ahead_h=" + state.aheadH);
    if (!r.ok) return;
    const h = await r.json();
    state.power = h.power;
    state.limit = h.limit;
    state.now = h.now;
    draw();
  }

  function merged() {
    // One x axis for uPlot: power samples plus the limit's step corners (null where absent).
    const rows = new Map();
    const put = (x, i, v) => {
      const row = rows.get(x) || [x, null, null, null];
      row[i] = v;
      rows.set(x, row);
    };
    state.power.t.forEach((t, i) => put(t, 1, state.power.kw[i]));
    for (const [s, e, lim, bud] of state.limit) {
      put(s, 2, lim); put(s, 3, bud);
      put(e - 0.001, 2, lim); put(e - 0.001, 3, bud);
    }
    const xs = Array.from(rows.keys()).sort((a, b) => a - b);
    const cols = [[], [], [], []];
    for (const x of xs) rows.get(x).forEach((v, i) => cols[i].push(v));
    return cols;
  }

  function draw() {
    const data = merged();
    const el = $("#chart");
    const range = [state.now - state.hours * 3600, state.now + state.aheadH * 3600];
    if (state.chart) {
      state.chart.setData(data, false);
      state.chart.setScale("x", { min: range[0], max: range[1] });
      return;
    }
    const nowLine = (u) => {
      const x = u.valToPos(state.now, "x", true);
      const ctx = u.ctx;
      ctx.save();
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "#666";
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.restore();
    };
    state.chart = new uPlot({
      width: Math.max(320, el.clientWidth - 8),
      height: 320,
      scales: { x: { time: true, range: () => [state.now - state.hours * 3600, state.now + state.aheadH * 3600] },
        y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      axes: [{}, { label: "kW", size: 60 }],
      series: [
        {},
        { label: "measured facility power", stroke: "#1f6feb", width: 2, spanGaps: true,
          value: (u, v) => kw(v) },
        { label: "facility limit", stroke: "#d73a49", width: 2, spanGaps: true, points: { show: false },
          value: (u, v) => kw(v) },
        { label: "GPU budget", stroke: "#e36209", width: 1, dash: [4, 3], spanGaps: true, points: { show: false },
          value: (u, v) => kw(v) },
      ],
      hooks: { draw: [nowLine] },
    }, data, el);
    window.addEventListener("resize", () =>
      state.chart.setSize({ width: Math.max(320, el.clientWidth - 8), height: 320 }));
  }

  $$(".range button").forEach((b) => b.addEventListener("click", () => {
    $$(".range button").forEach((o) => o.classList.toggle("on", o === b));
    state.hours = +b.dataset.hours;
    loadHistory();
  }));

  // -- live feed ------------------------------------------------------------------------------
  function onFacility(f) {
    state.now = f.t;
    state.power.t.push(f.t);
    state.power.kw.push(f.facility_power_kw);
    const cut = f.t - state.hours * 3600;
    while (state.power.t.length && state.power.t[0] < cut) { state.power.t.shift(); state.power.kw.shift(); }
    $("#kpi-limit").textContent = kw(f.limit_kw);
    $("#kpi-power").textContent = kw(f.facility_power_kw);
    const headroom = f.limit_kw - f.facility_power_kw;
    $("#kpi-headroom").textContent = kw(headroom);
    $("#kpi-headroom").classList.toggle("bad", headroom < 0);
    $("#kpi-budget").textContent = kw(f.gpu_budget_kw);
    $("#kpi-nodes").textContent = f.counts.online + " / " + f.counts.stale + " / " + f.counts.offline;
    $("#kpi-version").textContent = f.version_id === null ? "none" : "#" + f.version_id;
    updateNodes(f.nodes);
    draw();
  }

  function updateNodes(nodes) {
    const table = $("#nodes table");
    if (!table || +table.dataset.count !== nodes.length) { loadFragment("nodes"); return; }
    for (const n of nodes) {
      const row = table.querySelector('tr[data-node-id="' + n.id + '"]');
      if (!row) continue;
      const st = row.querySelector('[data-f="status"]');
      st.textContent = n.status; st.className = "status " + n.status;
      const md = row.querySelector('[data-f="mode"]');
      md.textContent = n.mode; md.className = "mode " + n.mode;
      row.querySelector('[data-f="power"]').textContent =
        (n.power_w === null ? "–" : (n.power_w / 1000).toFixed(2) + " kW") + " / " +
        (n.alloc_w === null ? "–" : (n.alloc_w / 1000).toFixed(2) + " kW");
      row.querySelector('[data-f="tokj"]').textContent = n.tok_per_j === null ? "–" : n.tok_per_j.toFixed(2);
      row.querySelector('[data-f="seen"]').textContent = n.age_s === null ? "never" : Math.round(n.age_s) + " s ago";
    }
  }

  function handleFrame(frame) {
    let event = "message"; const data = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      else if (line.startsWith("retry:")) state.retryMs = +line.slice(6);
    }
    if (!data.length) return;
    const body = JSON.parse(data.join("\n"));
    if (event === "facility") onFacility(body);
    else if (event === "budget") { loadHistory(); loadFragment("events"); }
    else if (event === "hello") $("#live-state").textContent = "live";
  }

  async function follow() {
    state.abort = new AbortController();
    const signal = state.abort.signal;
    while (token() && !signal.aborted) {
      try {
        const r = await fetch("/ui/stream", { headers: auth(), signal });
        if (r.status === 401 || r.status === 403) return signOut("Your token is no longer valid.");
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) { handleFrame(buf.slice(0, i)); buf = buf.slice(i + 2); }
        }
      } catch (err) {
        if (signal.aborted) return;
      }
      $("#live-state").textContent = "reconnecting…";
      await new Promise((ok) => setTimeout(ok, state.retryMs));
    }
  }

  // -- curtailment form (writers only: the server leaves it out for auditors) -----------------
  const FIELD_FOR = { limit_kw: "value", reduction_kw: "value", reduction_pct: "value" };

  function showErrors(form, detail) {
    if (!Array.isArray(detail)) detail = [{ loc: ["body"], msg: String(detail) }];
    for (const err of detail) {
      const loc = (err.loc || []).filter((p) => p !== "body" && typeof p === "string");
      const field = loc.length ? (FIELD_FOR[loc[0]] || loc[0]) : "_form";
      const slot = form.querySelector('[data-error-for="' + field + '"]') ||
        form.querySelector('[data-error-for="_form"]');
      slot.textContent = (slot.textContent ? slot.textContent + "; " : "") +
        err.msg.replace(/^Value error, /, "");
      const input = form.querySelector('[name="' + (field === "duration_s" ? "duration_min" : field) + '"]');
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }

  function formBody(form) {
    const f = new FormData(form);
    const body = {};
    const start = f.get("start");
    const parsed = start ? new Date(start) : null;
    body.start = parsed && !isNaN(parsed) ? parsed.toISOString() : start;
    const minutes = f.get("duration_min");
    body.duration_s = minutes === "" ? null : +minutes * 60;
    const value = f.get("value");
    body[f.get("kind")] = value === "" ? null : +value;
    body.priority = f.get("priority") === "" ? 0 : +f.get("priority");
    if (f.get("name")) body.name = f.get("name");
    return body;
  }

  function resetForm(form) {
    form.reset();
    form.elements.edit_id.value = "";
    $("#form-title").textContent = "Schedule a curtailment";
    $("#curtail-submit").textContent = "Schedule";
    const soon = new Date(Date.now() + 5 * 60000);
    soon.setSeconds(0, 0);
    form.elements.start.value = new Date(soon - soon.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  document.addEventListener("submit", async (ev) => {
    if (ev.target.id !== "curtail-form") return;
    ev.preventDefault();
    const form = ev.target;
    $$("[data-error-for]", form).forEach((e) => (e.textContent = ""));
    $$("[aria-invalid]", form).forEach((e) => e.removeAttribute("aria-invalid"));
    const id = form.elements.edit_id.value;
    const r = await api(id ? "/v1/curtailments/" + id : "/v1/curtailments", {
      method: id ? "PATCH" : "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(formBody(form)),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) return showErrors(form, body.detail || r.statusText);
    const warnings = body.warnings || [];
    resetForm(form);
    await Promise.all([loadFragment("events"), loadHistory()]);
    const box = $("#form-warnings");
    box.innerHTML = "";
    const note = document.createElement("p");
    note.className = "ok";
    note.textContent = "Curtailment #" + body.id + " (v" + body.version + ") stored.";
    box.appendChild(note);
    for (const w of warnings) {
      const p = document.createElement("p");
      p.className = "warning";
      p.textContent = "⚠ " + w;
      box.appendChild(p);
    }
  });

  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    const form = $("#curtail-form");
    if (b.id === "curtail-reset" && form) return resetForm(form);
    if (b.classList.contains("change") && form) {
      const row = b.closest("tr");
      form.elements.edit_id.value = b.dataset.id;
      const start = new Date(row.dataset.start);
      form.elements.start.value = new Date(start - start.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      form.elements.duration_min.value = +row.dataset.durationS / 60;
      form.elements.kind.value = row.dataset.kind;
      form.elements.value.value = row.dataset.value;
      form.elements.priority.value = row.dataset.priority;
      form.elements.name.value = row.dataset.name;
      $("#form-title").textContent = "Change curtailment #" + b.dataset.id;
      $("#curtail-submit").textContent = "Save change";
      form.scrollIntoView({ behavior: "smooth" });
    } else if (b.classList.contains("cancel")) {
      if (!window.confirm("Cancel curtailment #" + b.dataset.id + "?")) return;
      const r = await api("/v1/curtailments/" + b.dataset.id, { method: "DELETE" });
      if (r.ok) await Promise.all([loadFragment("events"), loadHistory()]);
    }
  });

  new MutationObserver(() => {
    const form = $("#curtail-form");
    if (form && !form.dataset.ready) { form.dataset.ready = "1"; resetForm(form); }
  }).observe(document.body, { childList: true, subtree: true });

  // -- boot -----------------------------------------------------------------------------------
  if (token()) {
    signIn(token()).then(start, (err) => signOut("Please sign in again: " + err.message));
  }
})();
