// dialtone dashboard: plain JavaScript, no build step. Everything goes through the public
// /api/v1 API with the user's API key (kept in sessionStorage, sent as a Bearer token).
// Live updates come from GET /api/v1/events (server-sent events), read with fetch()
// streaming because EventSource cannot send an Authorization header.
"use strict";

const KEY = "dialtone_api_key";
const main = document.getElementById("main");
let liveHandlers = []; // (kind, data) => void, reset on every page change
let stream = null; // AbortController of the event stream

// ---------- helpers ----------

/** Builds an element: h("td", {class: "x", onclick: f}, "text", child...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) {
      el.addEventListener(k.slice(2), v);
      // An action still running on this button's thing: drawn disabled (see `press`).
      if (v.busyKey) { el.dataset.busyKey = v.busyKey; el.disabled = busyKeys.has(v.busyKey); }
    }
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces `el`'s children, skipping null / undefined / false ones (conditional parts). */
function setChildren(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.details = e.details;
  }
}

/** Calls /api/v1{path}; `body` is JSON unless it is FormData, a Blob or a string (sent as is). */
async function api(method, path, body, contentType) {
  // Signed out (a reload queued before Sign out runs after it): nothing is asked, and the
  // quiet 401 draws nothing (`attempt` shows no 401).
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new ApiError(401, null);
  const headers = { Authorization: `Bearer ${key}` };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (typeof body === "string" || body instanceof Blob) { payload = body; headers["Content-Type"] = contentType || "text/csv"; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const res = await fetch(`/api/v1${path}`, { method, headers, body: payload });
  if (res.status === 401) { signOut("Your API key was refused: sign in again."); throw new ApiError(401, null); }
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.blob();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString();
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

function badge(s) { return h("span", { class: `badge ${s || ""}` }, s || "—"); }

function errorBox(e) { return h("div", { class: "error", role: "alert" }, e.message || String(e)); }

/**
 * Runs `f`, showing a failure in `where` (or at the top of the page). When `where` is a form
 * (a submit), its earlier failure is taken away and the form is busy until `f` ends: its submit
 * buttons are disabled and a second submit meanwhile is ignored (a double click creates one
 * campaign, one scheduled call).
 */
async function attempt(f, where) {
  const run = async () => {
    try { return await f(); } catch (e) {
      // A 401 signed out already; signed out meanwhile, the failure is not drawn over sign-in.
      if (e.status === 401 || !sessionStorage.getItem(KEY)) return;
      (where || main).prepend(errorBox(e));
    }
  };
  if (!(where instanceof HTMLFormElement)) return run();
  return exclusively(where, submitButtons(where), () => { clearErrors(where); return run(); });
}

function submitButtons(form) { return form.querySelectorAll("button[type=submit], button:not([type])"); }

/**
 * Runs `f` unless `key` is busy (then resolves to undefined without running it). `key` names
 * what is acted on: a string such as "campaign:<id>", or the form or button itself. While `f`
 * runs, `buttons` are disabled, and so is every button drawn meanwhile for a string key (see
 * `h`); so a double click or a double submit sends one request.
 */
async function exclusively(key, buttons, f) {
  if (busyKeys.has(key)) return;
  busyKeys.add(key);
  const disabled = [...buttons].filter((b) => !b.disabled);
  for (const b of disabled) b.disabled = true;
  try { return await f(); } finally {
    busyKeys.delete(key);
    for (const b of disabled) b.disabled = false;
    if (typeof key === "string") for (const b of document.querySelectorAll(`button[data-busy-key="${CSS.escape(key)}"]`)) b.disabled = false;
  }
}

/**
 * An action button's click handler: runs `f` as [`attempt`] does, showing a failure in `where`
 * (or at the top of the page) after taking away the failures earlier actions left there. The
 * button is disabled until `f` ends, so a double click sends one request; with a `key`, so is
 * every button drawn meanwhile with the same key (see `busyKeys`).
 */
function press(f, where, key) {
  const handler = (ev) => {
    const button = ev.currentTarget;
    return exclusively(key || button, [button], () => { clearErrors(where || main); return attempt(f, where); });
  };
  handler.busyKey = key;
  return handler;
}

/**
 * What actions are running on (see `exclusively`). A page that redraws its buttons while an
 * action runs (the stream, a re-read) draws those with a busy key disabled.
 */
const busyKeys = new Set();

/**
 * Wraps the async `f` so that its calls run one after another, in the order they are made.
 * A page's reload (fetch, then draw) started by a later action or event then draws after,
 * and so over, one started earlier: a slow earlier answer can no longer draw an older state
 * over a newer one. Each call's promise settles with its own run; a failed run does not stop
 * the ones queued behind it.
 */
function serial(f) {
  let last = Promise.resolve();
  return (...args) => {
    const run = last.then(() => f(...args));
    // A run still going SERIAL_WAIT_MS after it started (a request that never answers)
    // stops holding the ones behind it.
    last = last.then(() => new Promise((next) => {
      const timer = setTimeout(next, SERIAL_WAIT_MS);
      run.catch(() => {}).then(() => { clearTimeout(timer); next(); });
    }));
    return run;
  };
}
let SERIAL_WAIT_MS = 30000; // a `let`: the browser tests shorten it

/**
 * A queue for one thing a page shows (a campaign, a batch, a call): `inOrder(job)` runs the
 * async `job` (an action's request and the draw of its answer, or a re-read and its draw)
 * after the jobs given before it, so their answers are drawn in the order they were asked for.
 */
function queue() {
  return serial((job) => job());
}

/** Takes away the failures shown directly in `el` (by `attempt`). */
function clearErrors(el) {
  for (const e of el.querySelectorAll(":scope > .error")) e.remove();
}

function sum(obj) { return Object.values(obj || {}).reduce((a, b) => a + b, 0); }

/** Contacts no longer waiting for a call, of all contacts. */
function progress(counts) {
  const c = counts.contacts || {};
  const total = sum(c);
  const open = (c.pending || 0) + (c.in_call || 0);
  return { done: total - open, total };
}

function progressCell(counts) {
  const p = progress(counts);
  const pct = p.total ? Math.round((100 * p.done) / p.total) : 0;
  return h("span", { class: "progress-cell" }, h("span", { class: "progress" }, h("i", { style: `width:${pct}%` })), h("span", { class: "progress-text" }, `${p.done} / ${p.total}`));
}

// ---------- live events ----------

function setLive(on) {
  const el = document.getElementById("live");
  el.textContent = on ? "live" : "offline";
  el.classList.toggle("on", on);
}

/** Reads GET /api/v1/events for as long as the user is signed in; reconnects with Last-Event-ID. */
async function openStream() {
  if (stream) return;
  const ctl = new AbortController();
  stream = ctl;
  let lastId = null;
  while (!ctl.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const res = await fetch("/api/v1/events", { headers, signal: ctl.signal });
      if (res.status === 401) { signOut("Your API key was refused: sign in again."); return; }
      if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let kind = "message", data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            let v = i < 0 ? "" : line.slice(i + 1);
            if (v.startsWith(" ")) v = v.slice(1);
            if (field === "event") kind = v;
            else if (field === "data") data += (data ? "\n" : "") + v;
            else if (field === "id") id = v;
          }
          if (id) lastId = id;
          if (!data) continue;
          let parsed;
          try { parsed = JSON.parse(data); } catch { continue; }
          for (const f of liveHandlers) { try { f(kind, parsed); } catch (e) { console.error(e); } }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onLive(f) { liveHandlers.push(f); }

// ---------- sign-in ----------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  if (stream) { stream.abort(); stream = null; }
  setLive(false);
  signInPage(message);
}

function signInPage(message) {
  document.getElementById("nav").hidden = true;
  const input = h("input", { type: "password", id: "api-key", name: "api_key", autocomplete: "off", required: true, placeholder: "dt_…" });
  const form = h("form", { class: "card signin", id: "signin", onsubmit: async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await api("GET", "/campaigns?limit=1");
      start();
    } catch (e) {
      if (e.status !== 401) form.append(errorBox(e));
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", { class: "notice" }, "Paste an API key (", h("code", {}, "dialtone keys create"), "). It is kept in this tab only."),
  message ? h("div", { class: "error" }, message) : null,
  h("label", {}, "API key", input), " ",
  h("button", { type: "submit" }, "Sign in"));
  signInForm = form;
  setChildren(main, form);
  input.focus();
}

// The sign-in form last drawn (every sign-out draws one): put back as it is, with its message
// and what is typed in it, when a page that was still loading at sign-out draws over it.
let signInForm = null;

// ---------- pages ----------

const routes = [
  [/^#\/campaigns$/, campaignsPage],
  [/^#\/campaign\/([^/]+)$/, campaignPage],
  [/^#\/calls$/, callsPage],
  [/^#\/call\/([^/]+)$/, callPage],
  [/^#\/scheduled$/, scheduledPage],
  [/^#\/dnc$/, dncPage],
  [/^#\/stats$/, statsPage],
  [/^#\/batches$/, batchesPage],
  [/^#\/batch\/([^/]+)$/, batchPage],
  [/^#\/webhooks$/, webhooksPage],
  [/^#\/webhook\/([^/]+)$/, webhookPage],
  [/^#\/accounts$/, accountsPage],
  [/^#\/keys$/, keysPage],
  [/^#\/workspaces$/, workspacesPage],
];

let routing = Promise.resolve();
let routeGen = 0;

/**
 * Shows the page the location's hash names. One at a time: a page still loading when the
 * hash changes again finishes first (and is then replaced); navigations queued behind a
 * newer one are skipped. Without this, a slow page could draw over a faster later one.
 */
function route() {
  const gen = ++routeGen;
  routing = routing.then(() => (gen === routeGen ? routeNow() : undefined));
  return routing;
}

async function routeNow() {
  if (!sessionStorage.getItem(KEY)) return signInPage();
  liveHandlers = [];
  const path = (location.hash || "#/campaigns").split("?")[0];
  for (const a of document.querySelectorAll("nav a")) {
    const href = a.getAttribute("href");
    const one = href === "#/batches" ? "#/batch" : href.replace(/s$/, "");
    a.classList.toggle("active", path === href || path.startsWith(`${one}/`));
  }
  for (const [re, page] of routes) {
    const m = path.match(re);
    if (m) {
      const loading = h("p", { class: "notice" }, "Loading…");
      setChildren(main, loading);
      await attempt(() => page(...m.slice(1).map(decodeURIComponent)));
      // Signed out while the page loaded: it drew over the sign-in page, which comes back.
      if (!sessionStorage.getItem(KEY)) return setChildren(main, signInForm);
      // A page that failed before drawing (a 404) leaves its error above the notice.
      loading.remove();
      return;
    }
  }
  location.hash = "#/campaigns";
}

/** The buttons of what can be done to campaign `c` now; `after(answer)` draws the answer, in
 * `inOrder` (a page's [`queue`]) when given. */
function campaignActions(c, after, inOrder = (job) => job()) {
  const act = (verb, ask) => press(async () => {
    if (ask && !confirm(ask)) return;
    await inOrder(async () => { const v = await api("POST", `/campaigns/${c.id}/${verb}`); after(v); });
  }, undefined, `campaign:${c.id}`);
  const s = c.status;
  return h("span", { class: "actions" },
    s === "draft" ? h("button", { onclick: act("start"), "data-action": "start" }, "Start") : null,
    s === "starting" || s === "dialing" ? h("button", { class: "secondary", onclick: act("pause"), "data-action": "pause" }, "Pause") : null,
    s === "paused" ? h("button", { onclick: act("resume"), "data-action": "resume" }, "Resume") : null,
    ["draft", "starting", "dialing", "paused"].includes(s) ? h("button", { class: "danger", onclick: act("cancel", `Cancel campaign "${c.name}"?`), "data-action": "cancel" }, "Cancel") : null);
}

const CALLER_STRATEGIES = ["round_robin", "least_used", "local_presence"];

/** A campaign's or batch's caller-ID pool and throttle, when set (null otherwise). */
function callerSettings(c) {
  const pool = c.caller_numbers || [];
  if (!pool.length && !c.calls_per_minute) return null;
  const by = c.caller_number_strategy === "local_presence" ? `local_presence, else ${c.fallback_strategy}` : c.caller_number_strategy;
  return h("p", { id: "caller-settings" },
    pool.length ? h("span", {}, "Caller numbers: ", h("span", { id: "caller-numbers" }, pool.join(", ")), ` (${by}). `) : null,
    c.calls_per_minute ? h("span", { id: "calls-per-minute" }, `At most ${c.calls_per_minute} calls per minute.`) : null);
}

async function campaignsPage() {
  const [list, accounts] = await Promise.all([api("GET", "/campaigns?limit=100"), enabledAccounts()]);
  const body = h("tbody");
  const rows = new Map();
  const row = (c) => {
    const tr = h("tr", { class: "clickable", "data-campaign-id": c.id, onclick: (ev) => { if (!ev.target.closest("button")) location.hash = `#/campaign/${c.id}`; } },
      h("td", {}, h("a", { href: `#/campaign/${c.id}` }, c.name)),
      h("td", { class: "status" }, badge(c.status)),
      h("td", {}, progressCell(c.counts)),
      h("td", {}, c.counts.active_calls),
      h("td", {}, c.provider),
      h("td", {}, fmtTime(c.created_at)),
      h("td", {}, campaignActions(c, (v) => put({ ...c, ...v }))));
    return tr;
  };
  const put = (c) => {
    const tr = row(c);
    const old = rows.get(c.id);
    if (old) old.replaceWith(tr); else body.prepend(tr);
    rows.set(c.id, tr);
  };
  for (const c of list.data.slice().reverse()) put(c);
  onLive((kind, c) => { if (kind === "campaign") put(c); });

  const f = (name, attrs) => h("input", { name, ...attrs });
  const provider = h("select", { name: "provider", onchange: () => account.refresh() }, ["sim", "vapi", "twilio", "exotel"].map((p) => h("option", {}, p)));
  const account = accountSelect(accounts, () => provider.value);
  const form = h("form", { class: "card", id: "create-campaign", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    await attempt(async () => {
      const body = {
        name: d.get("name"), provider: d.get("provider"), assistant_id: d.get("assistant_id"),
        max_concurrent: Number(d.get("max_concurrent")), max_attempts: Number(d.get("max_attempts")), mode: d.get("mode"),
        calling_hours: { start: d.get("hours_start"), end: d.get("hours_end") },
      };
      // Left out when empty: with a pool the first number is the default caller, and the
      // API names whichever field is missing or wrong.
      if (d.get("phone_number_id")) body.phone_number_id = d.get("phone_number_id");
      const pool = d.get("caller_numbers").split(/[\n,]/).map((n) => n.trim()).filter((n) => n);
      if (pool.length) {
        body.caller_numbers = pool;
        body.caller_number_strategy = d.get("caller_number_strategy");
        body.fallback_strategy = d.get("fallback_strategy");
      }
      if (d.get("calls_per_minute")) body.calls_per_minute = Number(d.get("calls_per_minute"));
      if (d.get("account_id")) body.account_id = d.get("account_id");
      const c = await api("POST", "/campaigns", body);
      location.hash = `#/campaign/${c.id}`;
    }, form);
  } },
  h("h2", {}, "New campaign"),
  h("div", { class: "row" },
    h("label", {}, "Name", f("name", { required: true })),
    h("label", {}, "Provider", provider),
    h("label", { title: "one of this workspace's enabled accounts of the provider (Accounts page), or the server's" }, "Account", account),
    h("label", {}, "Assistant id", f("assistant_id", { required: true })),
    h("label", { title: "the caller; with caller numbers, the first of them unless given" }, "Phone number id", f("phone_number_id")),
    h("label", {}, "Max concurrent", f("max_concurrent", { type: "number", min: 1, max: 1000, value: 8 })),
    h("label", {}, "Max attempts", f("max_attempts", { type: "number", min: 1, max: 100, value: 3 })),
    h("label", {}, "Mode", h("select", { name: "mode" }, h("option", {}, "continuous"), h("option", {}, "batch"))),
    h("label", { title: "each recipient's local time; equal start and end: round the clock" }, "Calling hours from", f("hours_start", { type: "time", value: "08:00", required: true })),
    h("label", {}, "to", f("hours_end", { type: "time", value: "21:00", required: true })),
    h("label", { title: "one per line or comma-separated; each contact's calls go from one of them" }, "Caller numbers",
      h("textarea", { name: "caller_numbers", rows: 3, placeholder: "+14155550100\n+12125550100" })),
    h("label", {}, "Pick by", h("select", { name: "caller_number_strategy" }, CALLER_STRATEGIES.map((s) => h("option", {}, s)))),
    h("label", { title: "when local_presence finds no local number" }, "else", h("select", { name: "fallback_strategy" }, CALLER_STRATEGIES.slice(0, 2).map((s) => h("option", {}, s)))),
    h("label", { title: "at most this many calls placed in any 60 s; empty: no limit" }, "Calls per minute", f("calls_per_minute", { type: "number", min: 1, max: 10000 })),
    h("button", { type: "submit" }, "Create")));

  setChildren(main, 
    h("h1", {}, "Campaigns"),
    h("div", { class: "scroll" }, h("table", { id: "campaigns" },
      h("thead", {}, h("tr", {}, ["Name", "Status", "Progress", "Live calls", "Provider", "Created", ""].map((t) => h("th", {}, t)))), body)),
    list.data.length ? null : h("p", { class: "notice" }, "No campaigns yet."),
    form);
}

/** A bar chart of hourly points: one group of bars per hour, one bar per key. */
function barChart(points, keys, colors, id) {
  const W = 720, H = 200, pad = 28;
  const max = Math.max(1, ...points.flatMap((p) => keys.map((k) => p[k] || 0)));
  const slot = (W - pad) / Math.max(1, points.length);
  const bw = Math.max(1, (slot * 0.8) / keys.length);
  const g = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H + 20}`, id, role: "img" });
  g.append(svg("line", { x1: pad, y1: H, x2: W, y2: H, stroke: "#bbb" }));
  g.append(svg("text", { x: 0, y: 10 }, String(max)));
  g.append(svg("text", { x: 0, y: H }, "0"));
  points.forEach((p, i) => {
    keys.forEach((k, j) => {
      const v = p[k] || 0, bh = (v / max) * (H - 10);
      g.append(svg("rect", { x: pad + i * slot + j * bw, y: H - bh, width: bw, height: bh, fill: colors[j] }, svg("title", {}, `${fmtTime(p.hour)} ${k}: ${v}`)));
    });
    if (i % Math.ceil(points.length / 8) === 0) {
      const d = new Date(p.hour);
      g.append(svg("text", { x: pad + i * slot, y: H + 14 }, `${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, "0")}:00`));
    }
  });
  return h("div", {}, g, h("div", { class: "legend" }, keys.map((k, j) => h("span", {}, h("i", { style: `background:${colors[j]}` }), k))));
}

/** A line chart of a 0–1 rate per hour (gaps where the rate is null). */
function rateChart(points, id) {
  const W = 720, H = 160, pad = 28;
  const g = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H + 20}`, id, role: "img" });
  g.append(svg("line", { x1: pad, y1: H, x2: W, y2: H, stroke: "#bbb" }));
  g.append(svg("text", { x: 0, y: 10 }, "100%"));
  g.append(svg("text", { x: 0, y: H }, "0%"));
  const step = (W - pad) / Math.max(1, points.length - 1);
  let d = "";
  points.forEach((p, i) => {
    if (p.rate === null) { return; }
    const x = pad + i * step, y = H - p.rate * (H - 10);
    d += `${d && points[i - 1] && points[i - 1].rate !== null ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
    g.append(svg("circle", { cx: x, cy: y, r: 2.5, fill: "#1d63d8" }, svg("title", {}, `${fmtTime(p.hour)}: ${Math.round(p.rate * 100)}%`)));
  });
  g.append(svg("path", { d, fill: "none", stroke: "#1d63d8", "stroke-width": 2 }));
  return g;
}

const COLORS = ["#1d63d8", "#1a7f37", "#b42318"];

function countsGrid(c) {
  const cells = [];
  const total = sum(c.counts.contacts);
  cells.push(["contacts", total]);
  for (const [k, v] of Object.entries(c.counts.contacts || {})) cells.push([`contacts ${k}`, v]);
  cells.push(["live calls", c.counts.active_calls]);
  for (const [k, v] of Object.entries(c.counts.outcomes || {})) cells.push([k, v]);
  return h("div", { class: "grid", id: "counts" }, cells.map(([k, v]) => h("div", { class: "stat", "data-count": k }, h("b", {}, v), h("span", {}, k))));
}

async function campaignPage(id) {
  let c = await api("GET", `/campaigns/${id}`);
  // Actions and re-reads draw in the order asked (a re-read sent before Pause answering after
  // it would draw "dialing" back); the stream's updates are drawn as they come.
  const inOrder = queue();
  const account = await accountNote(c);
  const head = h("div");
  const renderHead = () => {
    setChildren(head, 
      h("h1", {}, c.name, " ", h("span", { class: "status", id: "campaign-status" }, badge(c.status))),
      h("p", {}, progressCell(c.counts), " ", c.waiting_reason ? h("span", { class: "notice" }, c.waiting_reason) : null),
      account,
      callerSettings(c),
      h("div", { class: "actions" }, campaignActions(c, (v) => { c = v; renderHead(); }, inOrder),
        h("button", { class: "secondary", id: "export", onclick: press(async () => {
          const blob = await api("GET", `/campaigns/${id}/export.csv`);
          const a = h("a", { href: URL.createObjectURL(blob), download: `${id}.csv` });
          document.body.append(a); a.click(); a.remove();
        }, undefined, `export:${id}`) }, "Export CSV")),
      h("h2", {}, "Counts"), countsGrid(c),
      h("h2", {}, "Alerts"),
      h("div", { id: "alerts" }, (c.alerts || []).length ? c.alerts.map((a) => h("div", { class: "alert" }, a.message)) : h("p", { class: "notice" }, "None.")),
      h("h2", {}, "Waiting"),
      waitingTable(c.waiting));
  };
  renderHead();
  onLive(async (kind, v) => {
    if (kind === "campaign" && v.id === id) {
      // The stream carries the list view; the waiting breakdown comes with GET.
      c = { ...v, waiting: c.waiting };
      renderHead();
    }
  });
  // The breakdown is re-read every few seconds while the page is open (it is not in the stream).
  const waitingTimer = setInterval(async () => {
    if (!document.body.contains(head)) return clearInterval(waitingTimer);
    try { await inOrder(async () => { c = await api("GET", `/campaigns/${id}`); renderHead(); }); } catch { /* shown on the next action */ }
  }, 10000);

  // Chart
  const chart = h("div", { id: "outcomes-chart" });
  attempt(async () => {
    const s = await api("GET", `/stats${qs({ campaign_id: id, preset: "week" })}`);
    const points = s.hourly.filter((p, i, all) => p.placed || p.answered || p.failed || i >= all.length - 24);
    setChildren(chart, barChart(points, ["placed", "answered", "failed"], COLORS, "campaign-hourly"));
  }, chart);

  // Import
  const report = h("div", { id: "import-report" });
  const file = h("input", { type: "file", name: "file", accept: ".csv,text/csv", id: "csv-file" });
  const upload = h("form", { class: "card", id: "upload", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!file.files.length) return;
    const d = new FormData();
    d.append("file", file.files[0]);
    // Busy while it uploads: a double click imports the file once.
    await exclusively(upload, submitButtons(upload), async () => {
      setChildren(report, h("p", { class: "notice" }, "Uploading…"));
      try {
        const r = await api("POST", `/campaigns/${id}/contacts`, d);
        setChildren(report, 
          h("p", { id: "import-summary" }, `${r.rows} rows: ${r.imported} imported, ${r.rejected_count} rejected.`),
          r.rejected.length ? h("div", { class: "scroll" }, h("table", { id: "rejected" }, h("thead", {}, h("tr", {}, h("th", {}, "Line"), h("th", {}, "Reason"))),
            h("tbody", {}, r.rejected.map((x) => h("tr", { "data-line": x.line }, h("td", {}, x.line), h("td", { class: "wrap" }, x.reason)))))) : null);
        loadContacts();
      } catch (e) {
        setChildren(report, errorBox(e), e.details && e.details.line ? h("p", {}, `Line ${e.details.line}`) : null);
      }
    });
  } }, h("h2", {}, "Upload contacts (CSV)"), h("div", { class: "row" }, file, h("button", { type: "submit" }, "Upload")), report);

  // Contacts
  const contactsBody = h("tbody");
  const status = h("select", { name: "status" }, ["", "pending", "in_call", "done", "exhausted", "canceled", "dnc"].map((s) => h("option", { value: s }, s || "any status")));
  const q = h("input", { name: "q", placeholder: "phone or name" });
  const more = h("button", { class: "secondary", hidden: true }, "More");
  let cursor = null;
  const loadContacts = serial(async (append) => {
    clearErrors(contactsSection);
    await attempt(async () => {
      const page = await api("GET", `/campaigns/${id}/contacts${qs({ status: status.value, q: q.value, limit: 50, before: append ? cursor : "" })}`);
      const rows = page.data.map((ct) => h("tr", {},
        h("td", {}, ct.phone), h("td", {}, ct.name || ""), h("td", {}, badge(ct.status)), h("td", {}, ct.attempts),
        h("td", {}, fmtTime(ct.next_attempt_at)), h("td", {}, (ct.timezones || [ct.timezone]).join(", ")), h("td", {}, ct.waiting_for || ""), h("td", {}, fmtTime(ct.until))));
      if (append) contactsBody.append(...rows); else setChildren(contactsBody, ...rows);
      cursor = page.next_cursor;
      more.hidden = !cursor;
    }, contactsSection);
  });
  more.onclick = () => loadContacts(true);
  const contactsSection = h("section", {}, h("h2", {}, "Contacts"),
    h("form", { class: "row", id: "contacts-search", onsubmit: (ev) => { ev.preventDefault(); loadContacts(); } }, status, q, h("button", { type: "submit" }, "Filter")),
    h("div", { class: "scroll" }, h("table", { id: "contacts" }, h("thead", {}, h("tr", {}, ["Phone", "Name", "Status", "Attempts", "Next attempt", "Time zone", "Waiting for", "Until"].map((t) => h("th", {}, t)))), contactsBody)),
    more);
  loadContacts();

  setChildren(main, h("p", {}, h("a", { href: "#/campaigns" }, "← Campaigns"), " · ", h("a", { href: `#/calls?campaign_id=${id}` }, "Calls")), head,
    h("h2", {}, "Calls per hour (last 7 days)"), chart, upload, contactsSection);
}

function waitingTable(w) {
  const entries = Object.entries(w || {});
  if (!entries.length) return h("p", { class: "notice", id: "waiting" }, "No contact is held back.");
  return h("div", { class: "scroll" }, h("table", { id: "waiting" }, h("thead", {}, h("tr", {}, ["Waiting for", "Contacts", "Earliest", "Latest"].map((t) => h("th", {}, t)))),
    h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("td", {}, k.replace(/_/g, " ")), h("td", {}, v.count), h("td", {}, fmtTime(v.earliest)), h("td", {}, fmtTime(v.latest)))))));
}

const CALL_STATUSES = ["scheduled", "queued", "dialing", "ringing", "in_progress", "ended", "failed", "canceled"];
const OUTCOMES = ["completed", "no_answer", "no_response", "busy", "voicemail", "failed", "invalid_number", "canceled", "timeout"];

function durationOf(call) {
  if (call.duration_secs !== undefined && call.duration_secs !== null) return `${call.duration_secs} s`;
  if (call.duration_ms !== undefined && call.duration_ms !== null) return `${Math.round(call.duration_ms / 1000)} s`;
  return "";
}

/** Campaign names by id, for the calls tables (filled by the pages that list campaigns). */
const campaignNames = new Map();

function callRow(call) {
  return h("tr", { class: "clickable", "data-call-id": call.id, onclick: () => { location.hash = `#/call/${call.id}`; } },
    h("td", {}, h("a", { href: `#/call/${call.id}` }, call.phone)),
    h("td", {}, badge(call.status)), h("td", {}, call.outcome || ""), h("td", {}, call.attempt),
    h("td", {}, durationOf(call)), h("td", {}, fmtTime(call.created_at)), h("td", {}, fmtTime(call.ended_at)),
    h("td", {}, h("a", { href: `#/campaign/${call.campaign_id}`, onclick: (e) => e.stopPropagation() }, campaignNames.get(call.campaign_id) || call.campaign_id)));
}

const CALL_HEAD = ["Phone", "Status", "Outcome", "Attempt", "Duration", "Created", "Ended", "Campaign"];

async function callsPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const campaigns = await api("GET", "/campaigns?limit=100");
  for (const c of campaigns.data) campaignNames.set(c.id, c.name);
  const sel = (name, values, label) => h("select", { name }, h("option", { value: "" }, label), values.map(([v, t]) => h("option", { value: v, selected: params.get(name) === v }, t)));
  const form = h("form", { class: "card row", id: "call-filters" },
    h("label", {}, "Campaign", sel("campaign_id", campaigns.data.map((c) => [c.id, c.name]), "all")),
    h("label", {}, "Status", sel("status", CALL_STATUSES.map((s) => [s, s]), "any")),
    h("label", {}, "Outcome", sel("outcome", OUTCOMES.map((s) => [s, s]), "any")),
    h("label", {}, "Phone", h("input", { name: "phone", value: params.get("phone") || "", placeholder: "+1415…" })),
    h("label", {}, "From", h("input", { name: "from", type: "date", value: params.get("from") || "" })),
    h("label", {}, "To", h("input", { name: "to", type: "date", value: params.get("to") || "" })),
    h("button", { type: "submit" }, "Filter"));
  const filters = () => Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ""));
  const body = h("tbody");
  const more = h("button", { class: "secondary", hidden: true }, "More");
  let cursor = null;
  // The date range is the created date in local time: whole local days, from the start of
  // `from` to the end of `to` (sent as created_from / created_to; live rows are checked here).
  const dayStart = (d) => new Date(`${d}T00:00`);
  const dayAfter = (d) => new Date(dayStart(d).getTime() + 86400000);
  const inRange = (call, f) => {
    const day = new Date(call.created_at);
    if (f.from && day < dayStart(f.from)) return false;
    if (f.to && day >= dayAfter(f.to)) return false;
    return true;
  };
  const matches = (call, f) => (!f.campaign_id || call.campaign_id === f.campaign_id) && (!f.status || call.status === f.status)
    && (!f.outcome || call.outcome === f.outcome) && (!f.phone || call.phone.replace(/\D/g, "").includes(f.phone.replace(/\D/g, ""))) && inRange(call, f);
  const load = serial(async (append) => {
    const f = filters();
    const { from, to, ...server } = f;
    if (from) server.created_from = dayStart(from).toISOString();
    if (to) server.created_to = dayAfter(to).toISOString();
    const page = await api("GET", `/calls${qs({ ...server, limit: 100, before: append ? cursor : "" })}`);
    const rows = page.data.map(callRow);
    if (append) body.append(...rows); else setChildren(body, ...rows);
    cursor = page.next_cursor;
    more.hidden = !cursor;
  });
  form.onsubmit = (ev) => {
    ev.preventDefault();
    history.replaceState(null, "", `#/calls${qs(filters())}`);
    attempt(() => load(false), form);
  };
  more.onclick = () => attempt(() => load(true));
  onLive((kind, call) => {
    if (kind !== "call") return;
    const old = body.querySelector(`tr[data-call-id="${CSS.escape(call.id)}"]`);
    if (!matches(call, filters())) { if (old) old.remove(); return; }
    if (old) old.replaceWith(callRow(call)); else body.prepend(callRow(call));
  });
  await load(false);
  setChildren(main, h("h1", {}, "Calls"), form, h("div", { class: "scroll" }, h("table", { id: "calls" }, h("thead", {}, h("tr", {}, CALL_HEAD.map((t) => h("th", {}, t)))), body)), more);
}

async function callPage(id) {
  const box = h("div");
  const render = (call) => {
    const field = (k, v) => (v === undefined || v === null || v === "" ? null : h("tr", {}, h("th", {}, k), h("td", { class: "wrap" }, v)));
    const live = ["queued", "dialing", "ringing", "in_progress"].includes(call.status);
    const transcript = call.transcript || null;
    setChildren(box, 
      h("p", {}, h("a", { href: "#/calls" }, "← Calls"), " · ", h("a", { href: `#/campaign/${call.campaign_id}` }, "Campaign")),
      h("h1", {}, `Call to ${call.phone} `, h("span", { id: "call-status" }, badge(call.status))),
      live ? h("button", { class: "danger", id: "hangup", onclick: press(() => inOrder(async () => { render(await api("POST", `/calls/${id}/hangup`)); }), undefined, `call:${id}`) }, "Hang up") : null,
      h("section", {}, h("table", { id: "call-fields" }, h("tbody", {},
        field("Outcome", call.outcome), field("Ended reason", call.ended_reason), field("Answered by", call.answered_by),
        field("Name", call.contact_name || call.name), field("Attempt", call.attempt), field("Direction", call.direction), field("Provider", call.provider),
        field("Provider call id", call.provider_call_id), field("Duration", durationOf(call)), field("Cost", call.cost),
        field("Created", fmtTime(call.created_at)), field("Scheduled for", fmtTime(call.scheduled_for)), field("Dialled", fmtTime(call.dialed_at)),
        field("Answered", fmtTime(call.answered_at)), field("Ended", fmtTime(call.ended_at)),
        field("Summary", call.summary),
        field("Recording", call.recording_url ? h("a", { href: call.recording_url, target: "_blank", rel: "noopener", id: "recording" }, "listen") : null),
        field("Variables", call.variables && Object.keys(call.variables).length ? JSON.stringify(call.variables) : null)))),
      h("h2", {}, "Transcript"),
      transcript && transcript.length
        ? h("section", { class: "transcript", id: "transcript" }, transcript.map((t) => h("p", { class: t.speaker }, h("b", {}, `${t.speaker}: `), t.text, t.interrupted ? " (interrupted)" : "")))
        : h("p", { class: "notice" }, "None."),
      h("h2", {}, "Events"),
      h("div", { class: "scroll" }, h("table", { id: "events" },
        h("thead", {}, h("tr", {}, ["Received", "Occurred", "Source", "Kind", "Type", "Applied", "Payload"].map((t) => h("th", {}, t)))),
        h("tbody", {}, (call.events || []).map((e) => h("tr", { "data-event-kind": e.kind },
          h("td", {}, fmtTime(e.received_at)), h("td", {}, fmtTime(e.occurred_at)), h("td", {}, e.source), h("td", {}, e.kind), h("td", {}, e.provider_type),
          h("td", {}, e.applied ? "yes" : e.mismatched ? "mismatched" : "no"),
          h("td", { class: "wrap" }, h("details", {}, h("summary", {}, "raw"), h("pre", {}, JSON.stringify(e.payload, null, 2))))))))));
  };
  // Hang-up and the re-reads the stream prompts draw in the order asked: a re-read sent before
  // the hang-up and answered after it would bring the Hang up button back.
  const inOrder = queue();
  render(await api("GET", `/calls/${id}`));
  onLive((kind, call) => { if (kind === "call" && call.id === id) attempt(() => inOrder(async () => render(await api("GET", `/calls/${id}`))), box); });
  setChildren(main, box);
}

function localInput(t) {
  const d = t ? new Date(t) : new Date(Date.now() + 3600000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function scheduledPage() {
  const [assistants, accounts] = await Promise.all([api("GET", "/assistants"), enabledAccounts()]);
  const assistant = h("select", { name: "assistant_id", required: true, onchange: () => account.refresh() }, assistants.data.map((a) => h("option", { value: a.id }, `${a.name || a.id} (${a.provider})`)));
  // A single call's account is of its assistant's provider.
  const account = accountSelect(accounts, () => (assistants.data.find((a) => a.id === assistant.value) || {}).provider);
  const body = h("tbody");
  const empty = h("p", { class: "notice" }, "Nothing scheduled.");
  const row = (call) => {
    const when = h("input", { type: "datetime-local", value: localInput(call.scheduled_for) });
    return h("tr", { "data-call-id": call.id },
      h("td", {}, h("a", { href: `#/call/${call.id}` }, call.phone)), h("td", {}, fmtTime(call.scheduled_for)),
      h("td", {}, h("span", { class: "row" }, when,
        h("button", { class: "secondary", onclick: act(call.id, async () => {
          if (!when.value) throw new Error("Choose the new date and time first.");
          await api("PUT", `/calls/${call.id}`, { scheduled_for: new Date(when.value).toISOString() });
        }) }, "Reschedule"),
        h("button", { class: "danger", onclick: act(call.id, async () => { await api("DELETE", `/calls/${call.id}`); }) }, "Cancel"))));
  };
  // A row's action; the list is read again whatever the answer, so a row acted on elsewhere
  // (canceled in another tab) goes rather than staying with buttons that always fail.
  const act = (id, f) => press(async () => { try { await f(); } finally { await reload(id); } });
  // Re-reads the list. A new time typed into a row but not yet sent stays typed (except in
  // the row `acted` on, which shows its new time).
  const reload = serial(async (acted) => {
    const calls = await api("GET", "/calls?status=scheduled&limit=200");
    const typed = new Map();
    for (const tr of body.querySelectorAll("tr[data-call-id]")) {
      const input = tr.querySelector("input[type=datetime-local]");
      if (tr.dataset.callId !== acted && input && input.value !== input.defaultValue) typed.set(tr.dataset.callId, input.value);
    }
    const rows = calls.data.map(row);
    for (const tr of rows) if (typed.has(tr.dataset.callId)) tr.querySelector("input[type=datetime-local]").value = typed.get(tr.dataset.callId);
    setChildren(body, ...rows);
    empty.hidden = calls.data.length > 0;
  });
  const form = h("form", { class: "card", id: "schedule-call", onsubmit: async (ev) => {
    ev.preventDefault();
    clearErrors(main);
    const d = new FormData(form);
    await attempt(async () => {
      const call = { assistant_id: d.get("assistant_id"), phone: d.get("phone"), respect_business_hours: d.get("respect_business_hours") === "on" };
      if (d.get("name")) call.name = d.get("name");
      if (d.get("scheduled_for")) call.scheduled_for = new Date(d.get("scheduled_for")).toISOString();
      if (d.get("account_id")) call.account_id = d.get("account_id");
      await api("POST", "/calls", call);
      form.reset();
      account.refresh();
      form.elements.scheduled_for.value = localInput();
    }, form);
    // Read again whatever the answer: a failure to read is not the call's failure.
    await attempt(reload);
  } }, h("h2", {}, "Schedule a call"), h("div", { class: "row" },
    h("label", {}, "Assistant", assistant),
    h("label", {}, "Account", account),
    h("label", {}, "Phone", h("input", { name: "phone", required: true, placeholder: "+14155552671" })),
    h("label", {}, "Name", h("input", { name: "name" })),
    h("label", {}, "When", h("input", { name: "scheduled_for", type: "datetime-local", value: localInput() })),
    h("label", {}, "Business hours only", h("input", { name: "respect_business_hours", type: "checkbox" })),
    h("button", { type: "submit" }, "Schedule")));
  await reload();
  setChildren(main, h("h1", {}, "Scheduled calls"), form,
    h("div", { class: "scroll" }, h("table", { id: "scheduled" }, h("thead", {}, h("tr", {}, ["Phone", "Scheduled for", ""].map((t) => h("th", {}, t)))), body)),
    empty);
}

async function dncPage() {
  const result = h("div", { id: "dnc-result" });
  const show = (r) => {
    setChildren(result, h("p", {}, `${r.added} added, ${r.already_listed} already listed, ${r.rejected_count} rejected.`),
      r.rejected.length ? h("table", {}, h("tbody", {}, r.rejected.map((x) => h("tr", {}, h("td", {}, `line ${x.line}`), h("td", { class: "wrap" }, x.reason))))) : null);
  };
  const add = h("form", { class: "card", id: "dnc-add", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(add);
    const numbers = String(d.get("numbers")).split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
    await attempt(async () => {
      const body = { numbers, reason: d.get("reason") || undefined };
      if (d.get("region")) body.region = d.get("region");
      show(await api("POST", "/dnc", body));
      await reload();
    }, add);
  } }, h("h2", {}, "Add numbers"), h("div", { class: "row" },
    h("label", {}, "Numbers (one a line)", h("textarea", { name: "numbers", rows: 3, required: true })),
    h("label", {}, "Reason", h("input", { name: "reason" })),
    h("label", {}, "Region of national numbers", h("input", { name: "region", placeholder: "US", size: 3 })),
    h("button", { type: "submit" }, "Add")));
  const file = h("input", { type: "file", accept: ".csv,text/csv" });
  const upload = h("form", { class: "card", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!file.files.length) return;
    await attempt(async () => { show(await api("POST", "/dnc", file.files[0], "text/csv")); await reload(); }, upload);
  } }, h("h2", {}, "Upload a CSV"), h("div", { class: "row" }, file, h("button", { type: "submit" }, "Upload")));
  const body = h("tbody");
  const reload = serial(async () => {
    const l = await api("GET", "/dnc?limit=500");
    setChildren(body, ...l.data.map((s) => h("tr", {}, h("td", {}, s.phone), h("td", {}, s.reason || ""), h("td", {}, fmtTime(s.created_at)),
      h("td", {}, h("button", { class: "danger", onclick: press(async () => { try { await api("DELETE", `/dnc/${encodeURIComponent(s.phone)}`); } finally { await reload(); } }) }, "Remove")))));
  });
  await reload();
  setChildren(main, h("h1", {}, "Do-not-call list"), add, upload, result,
    h("div", { class: "scroll" }, h("table", { id: "dnc" }, h("thead", {}, h("tr", {}, ["Phone", "Reason", "Added", ""].map((t) => h("th", {}, t)))), body)));
}

async function statsPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const campaigns = await api("GET", "/campaigns?limit=100");
  const preset = h("select", { name: "preset" }, ["today", "week", "month"].map((p) => h("option", { selected: (params.get("preset") || "today") === p }, p)));
  const campaign = h("select", { name: "campaign_id" }, h("option", { value: "" }, "all campaigns"), campaigns.data.map((c) => h("option", { value: c.id, selected: params.get("campaign_id") === c.id }, c.name)));
  const out = h("div");
  const load = serial(async () => {
    const s = await api("GET", `/stats${qs({ preset: preset.value, campaign_id: campaign.value })}`);
    const pct = (r) => (r === null || r === undefined ? "—" : `${Math.round(r * 1000) / 10} %`);
    const tile = (k, v) => h("div", { class: "stat", "data-stat": k }, h("b", {}, v), h("span", {}, k));
    const lat = (l) => (l && l.count ? `${l.p50} / ${l.p95} / ${l.p99} ms` : "—");
    setChildren(out,
      h("p", { class: "notice", id: "stats-range", "data-from": s.from, "data-to": s.to }, `${fmtTime(s.from)} – ${fmtTime(s.to)}`),
      h("div", { class: "grid" }, tile("calls", s.total_calls), tile("success rate", pct(s.success_rate)), tile("failure rate", pct(s.failure_rate)),
        tile("avg duration", s.avg_duration_secs === null ? "—" : `${Math.round(s.avg_duration_secs)} s`),
        tile("scheduled next hour", s.scheduled_next_hour), tile("scheduled next 24 h", s.scheduled_next_24h),
        tile("retries pending", s.retries.pending), tile("placement p50/95/99", lat(s.latency_ms.placement))),
      h("h2", {}, "Success rate over time (completed / placed, per hour)"),
      rateChart(s.hourly.map((p) => ({ hour: p.hour, rate: p.placed ? Math.min(1, p.completed / p.placed) : null })), "success-chart"),
      h("h2", {}, "Volume by hour"),
      barChart(s.hourly, ["placed", "answered", "failed"], COLORS, "volume-chart"),
      h("h2", {}, "Failure breakdown"),
      s.failure_breakdown.length
        ? h("div", { class: "scroll" }, h("table", { id: "failures" }, h("thead", {}, h("tr", {}, ["Outcome", "Reason", "Calls"].map((t) => h("th", {}, t)))),
          h("tbody", {}, s.failure_breakdown.map((f) => h("tr", {}, h("td", {}, f.outcome), h("td", { class: "wrap" }, f.reason || "—"), h("td", {}, f.count))))))
        : h("p", { class: "notice" }, "No failures in this range."),
      h("h2", {}, "By outcome"),
      h("div", { class: "grid" }, Object.entries(s.by_outcome).map(([k, v]) => tile(k, v))));
  });
  const form = h("form", { class: "card row", onsubmit: (ev) => { ev.preventDefault(); history.replaceState(null, "", `#/stats${qs({ preset: preset.value, campaign_id: campaign.value })}`); clearErrors(out); attempt(load, out); } },
    h("label", {}, "Range", preset), h("label", {}, "Campaign", campaign), h("button", { type: "submit" }, "Show"));
  await load();
  setChildren(main, h("h1", {}, "Stats"), form, out);
}

// ---------- batches ----------

/** A batch's progress bar and "finished / total (percent)". */
function batchProgress(b) {
  const p = b.progress || { finished: 0, total: 0, percent_done: 0 };
  return h("span", { class: "progress-cell" }, h("span", { class: "progress" }, h("i", { style: `width:${p.percent_done}%` })),
    h("span", { class: "progress-text" }, `${p.finished} / ${p.total} (${p.percent_done}%)`));
}

/** Batch `b`'s Cancel button (none once it is over); `after(answer)` draws the answer, in
 * `inOrder` (a page's [`queue`]). */
function batchCancel(b, after, inOrder) {
  if (["completed", "canceled"].includes(b.status)) return null;
  return h("button", { class: "danger", "data-action": "cancel-batch", onclick: press(async () => {
    if (confirm(`Cancel batch "${b.name}"? Calls not yet placed are not placed.`)) await inOrder(async () => after(await api("POST", `/batches/${b.id}/cancel`)));
  }, undefined, `batch:${b.id}`) }, "Cancel");
}

/**
 * Calls `refresh(campaignId)` at most once a second per batch when the event stream reports
 * one of its calls (batches are not in the stream themselves; their calls are). A call event
 * that arrives while a refresh is already due brings one more refresh a second after that
 * one: the batch's own state (completed) is written just after its last call ends, so a
 * refresh that raced that call's event may have read the batch a moment too early.
 */
function onBatchCalls(isMine, refresh) {
  // The page this was set up for: nothing is refreshed once it is left (signed out, `api`
  // asks nothing).
  const page = routeGen;
  const due = new Map(); // campaign id -> { again: a call event came while this one was due }
  const schedule = (id) => {
    const d = { again: false };
    due.set(id, d);
    setTimeout(() => {
      due.delete(id);
      if (page !== routeGen) return;
      refresh(id);
      if (d.again) schedule(id);
    }, 1000);
  };
  onLive((kind, call) => {
    if (kind !== "call" || !isMine(call.campaign_id)) return;
    const d = due.get(call.campaign_id);
    if (d) d.again = true; else schedule(call.campaign_id);
  });
}

async function batchesPage() {
  const list = await api("GET", "/batches?limit=100");
  const body = h("tbody");
  const rows = new Map();
  const inOrder = queue(); // cancels and refreshes draw in the order asked
  const put = (b) => {
    const tr = h("tr", { class: "clickable", "data-batch-id": b.id, onclick: (ev) => { if (!ev.target.closest("button")) location.hash = `#/batch/${b.id}`; } },
      h("td", {}, h("a", { href: `#/batch/${b.id}` }, b.name)),
      h("td", { class: "status" }, badge(b.status)),
      h("td", {}, batchProgress(b)),
      h("td", {}, b.counts.active_calls),
      h("td", {}, b.provider),
      h("td", {}, fmtTime(b.created_at)),
      h("td", {}, batchCancel(b, put, inOrder)));
    const old = rows.get(b.id);
    if (old) old.replaceWith(tr); else body.append(tr);
    rows.set(b.id, tr);
  };
  for (const b of list.data) put(b);
  onBatchCalls((id) => rows.has(id), (id) => attempt(() => inOrder(async () => put(await api("GET", `/batches/${id}`)))));
  setChildren(main,
    h("h1", {}, "Batches"),
    h("p", { class: "notice" }, "Many calls sent in one request (", h("code", {}, "POST /api/v1/batches"), " or ", h("code", {}, "dialtone batches create"), ")."),
    h("div", { class: "scroll" }, h("table", { id: "batches" },
      h("thead", {}, h("tr", {}, ["Name", "Status", "Progress", "Live calls", "Provider", "Created", ""].map((t) => h("th", {}, t)))), body)),
    list.data.length ? null : h("p", { class: "notice" }, "No batches yet."),
    list.next_cursor ? h("p", { class: "notice" }, "Showing the newest 100.") : null);
}

async function batchPage(id) {
  let b = await api("GET", `/batches/${id}`);
  const inOrder = queue(); // Cancel and the refreshes draw in the order asked
  const account = await accountNote(b);
  const head = h("div");
  const render = () => {
    const cells = [["calls", b.progress.total], ["finished", b.progress.finished], ["remaining", b.progress.remaining], ["live calls", b.counts.active_calls]];
    for (const [k, v] of Object.entries(b.counts.calls || {})) cells.push([`calls ${k}`, v]);
    for (const [k, v] of Object.entries(b.counts.outcomes || {})) cells.push([k, v]);
    setChildren(head,
      h("h1", {}, b.name, " ", h("span", { class: "status", id: "batch-status" }, badge(b.status))),
      h("p", { id: "batch-progress" }, batchProgress(b)),
      account,
      callerSettings(b),
      h("div", { class: "actions" }, batchCancel(b, (v) => { b = v; render(); }, inOrder)),
      h("h2", {}, "Counts"),
      h("div", { class: "grid", id: "batch-counts" }, cells.map(([k, v]) => h("div", { class: "stat", "data-count": k }, h("b", {}, v), h("span", {}, k)))));
  };
  render();
  const body = h("tbody");
  const more = h("button", { class: "secondary", hidden: true }, "More");
  let cursor = null;
  const load = serial(async (append) => {
    const page = await api("GET", `/batches/${id}/calls${qs({ limit: 100, before: append ? cursor : "" })}`);
    const rows = page.data.map(callRow);
    if (append) body.append(...rows); else setChildren(body, ...rows);
    cursor = page.next_cursor;
    more.hidden = !cursor;
  });
  more.onclick = () => attempt(() => load(true));
  await load(false);
  onLive((kind, call) => {
    if (kind !== "call" || call.campaign_id !== id) return;
    const old = body.querySelector(`tr[data-call-id="${CSS.escape(call.id)}"]`);
    if (old) old.replaceWith(callRow(call)); else body.prepend(callRow(call));
  });
  onBatchCalls((cid) => cid === id, () => attempt(() => inOrder(async () => { b = await api("GET", `/batches/${id}`); render(); })));
  setChildren(main, h("p", {}, h("a", { href: "#/batches" }, "← Batches")), head,
    h("h2", {}, "Calls"), h("div", { class: "scroll" }, h("table", { id: "batch-calls" }, h("thead", {}, h("tr", {}, CALL_HEAD.map((t) => h("th", {}, t)))), body)), more);
}

// ---------- webhook endpoints ----------

// The server writes its list in (dashboard.rs, from WEBHOOK_EVENT_TYPES): one list, never two.
const WEBHOOK_EVENTS = /* WEBHOOK_EVENT_TYPES */[];

/** A secret shown once (a new API key or a webhook signing secret), with a warning. */
function secretBox(id, what, secret) {
  return h("div", { class: "secret", id, role: "status" },
    h("p", {}, h("b", {}, `${what}: copy it now, it is not shown again.`)),
    h("code", { class: "secret-value" }, secret));
}

function endpointState(e) {
  if (e.enabled) return e.failing_since ? h("span", {}, badge("enabled"), " ", h("span", { class: "notice" }, `failing since ${fmtTime(e.failing_since)}`)) : badge("enabled");
  return h("span", {}, badge("disabled"), e.disabled_reason ? h("span", { class: "notice" }, ` (${e.disabled_reason})`) : null);
}

function endpointToggle(e, after) {
  return h("button", { class: e.enabled ? "secondary" : "", "data-action": e.enabled ? "disable" : "enable",
    onclick: press(async () => after(await api("PATCH", `/webhook-endpoints/${e.id}`, { enabled: !e.enabled })), undefined, `endpoint:${e.id}`) }, e.enabled ? "Disable" : "Enable");
}

async function webhooksPage() {
  const body = h("tbody");
  const reload = serial(async () => {
    const list = await api("GET", "/webhook-endpoints?limit=100");
    setChildren(body, ...list.data.map((e) => h("tr", { "data-endpoint-id": e.id },
      h("td", { class: "wrap" }, h("a", { href: `#/webhook/${e.id}` }, e.url), e.description ? h("div", { class: "notice" }, e.description) : null),
      h("td", { class: "wrap" }, e.events.join(", ")),
      h("td", { class: "state" }, endpointState(e)),
      h("td", {}, h("span", { class: "actions" }, endpointToggle(e, reload), h("a", { class: "button secondary", href: `#/webhook/${e.id}` }, "Deliveries"))))));
    if (!list.data.length) setChildren(body, h("tr", {}, h("td", { colspan: 4, class: "notice" }, "No endpoints yet.")));
  });
  const created = h("div");
  const form = h("form", { class: "card", id: "create-endpoint", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    await attempt(async () => {
      const r = await api("POST", "/webhook-endpoints", { url: d.get("url"), events: d.getAll("events"), description: d.get("description") || undefined });
      setChildren(created, secretBox("endpoint-secret", `Signing secret of ${r.url}`, r.secret));
      form.reset();
      await reload();
    }, form);
  } },
  h("h2", {}, "New endpoint"),
  h("div", { class: "row" },
    h("label", {}, "URL", h("input", { name: "url", type: "url", required: true, placeholder: "your receiver's URL", size: 36 })),
    h("label", {}, "Description", h("input", { name: "description" }))),
  h("fieldset", { class: "events" }, h("legend", {}, "Events"),
    WEBHOOK_EVENTS.map((e) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "events", value: e, checked: true }), e))),
  h("button", { type: "submit" }, "Create"));
  await reload();
  setChildren(main, h("h1", {}, "Webhook endpoints"),
    h("p", { class: "notice" }, "dialtone posts these events to your systems, signed per Standard Webhooks (", h("code", {}, "webhook-signature"), ")."),
    created,
    h("div", { class: "scroll" }, h("table", { id: "endpoints" }, h("thead", {}, h("tr", {}, ["URL", "Events", "State", ""].map((t) => h("th", {}, t)))), body)),
    form);
}

async function webhookPage(id) {
  let e = await api("GET", `/webhook-endpoints/${id}`);
  const head = h("div");
  const render = () => setChildren(head,
    h("h1", {}, "Endpoint ", h("span", { class: "wrap" }, e.url)),
    h("p", { id: "endpoint-state" }, endpointState(e), " ", endpointToggle(e, (v) => { e = v; render(); })),
    h("p", { class: "notice" }, `Events: ${e.events.join(", ")}`));
  render();
  const body = h("tbody");
  const reload = serial(async () => {
    const page = await api("GET", `/webhook-endpoints/${id}/deliveries?limit=50`);
    setChildren(body, ...page.data.map((d) => {
      const last = d.tries.length ? d.tries[d.tries.length - 1] : null;
      return h("tr", { "data-message-id": d.message_id, "data-tries": d.tries.length },
        h("td", {}, fmtTime(d.created_at)), h("td", {}, d.event_type), h("td", { class: "status" }, badge(d.status)), h("td", { class: "attempts" }, d.attempts),
        h("td", {}, last ? (last.status_code === null ? "—" : last.status_code) : "—"), h("td", {}, last ? `${last.latency_ms} ms` : "—"),
        h("td", { class: "wrap" }, last ? (last.error || last.response_excerpt || "") : (d.next_attempt_at ? `next try ${fmtTime(d.next_attempt_at)}` : "")),
        h("td", {}, h("details", {}, h("summary", {}, "body"), h("pre", {}, JSON.stringify(d.payload, null, 2)))),
        h("td", {}, h("button", { class: "secondary", "data-action": "replay", onclick: press(async () => { await api("POST", `/webhook-endpoints/${id}/deliveries/${d.message_id}/replay`); await reload(); }, undefined, `replay:${id}:${d.message_id}`) }, "Replay")));
    }));
    if (!page.data.length) setChildren(body, h("tr", {}, h("td", { colspan: 9, class: "notice" }, "No deliveries yet.")));
    // Deliveries are not in the event stream: while one is still being tried, the log is read again.
    if (page.data.some((d) => d.status === "pending") && !pendingTimer) {
      pendingTimer = setTimeout(() => { pendingTimer = null; if (document.body.contains(body)) attempt(reload); }, 2000);
    }
  });
  let pendingTimer = null;
  await reload();
  // Deliveries follow what the stream reports (a campaign or call changed: events are due), at most every 2 s.
  let due = null;
  onLive(() => { if (!due) due = setTimeout(() => { due = null; if (document.body.contains(body)) attempt(reload); }, 2000); });
  setChildren(main, h("p", {}, h("a", { href: "#/webhooks" }, "← Webhook endpoints")), head,
    h("h2", {}, "Delivery log ", h("button", { class: "link", id: "refresh-deliveries", onclick: () => attempt(reload) }, "refresh")),
    h("div", { class: "scroll" }, h("table", { id: "deliveries" },
      h("thead", {}, h("tr", {}, ["Created", "Event", "Status", "Tries", "HTTP", "Latency", "Response", "Payload", ""].map((t) => h("th", {}, t)))), body)));
}

// ---------- provider accounts ----------

/**
 * The credential fields of each provider's accounts (docs/api.md, "Provider accounts"):
 * [name, kind, note]; kind "secret" is a password input (the API never shows it again),
 * "bool" a checkbox, "text" a plain input. The API names a missing or wrong one.
 */
const ACCOUNT_FIELDS = {
  vapi: [["api_key", "secret", "required"], ["webhook_secret", "secret", "this or webhook_hmac_secret"], ["webhook_hmac_secret", "secret", ""], ["base_url", "text", "optional"]],
  twilio: [["account_sid", "text", "required"], ["auth_token", "secret", "required"], ["twiml_url", "text", "this or twiml"], ["twiml", "text", ""],
    ["base_url", "text", "optional"], ["machine_detection", "bool", ""]],
  exotel: [["sid", "text", "required"], ["api_key", "secret", "required"], ["api_token", "secret", "required"], ["callback_token", "secret", "required"],
    ["flow_url", "text", "this or stream_url"], ["stream_url", "text", ""], ["base_url", "text", "optional: a regional API, see docs/api.md"]],
};

/** The workspace's enabled accounts (the newest 100), for the forms that choose one. */
async function enabledAccounts() {
  const list = await api("GET", "/provider-accounts?limit=100");
  return list.data.filter((a) => a.enabled);
}

/**
 * A select of `accounts` of the provider `provider()` names, plus "server's account"
 * (value "": no account_id sent); `refresh()` it when the provider changes.
 */
function accountSelect(accounts, provider) {
  const sel = h("select", { name: "account_id" });
  sel.refresh = () => setChildren(sel, h("option", { value: "" }, "server's account"),
    accounts.filter((a) => a.provider === provider()).map((a) => h("option", { value: a.id }, `${a.name} (${a.id})`)));
  sel.refresh();
  return sel;
}

/** "Account: name (pa_…)" of a campaign or batch on a workspace account, else the server's. */
async function accountNote(c) {
  if (!c.account_id) return h("p", { id: "account" }, `Account: the server's ${c.provider} account.`);
  let name = null;
  try { name = (await api("GET", `/provider-accounts/${c.account_id}`)).name; } catch (e) { if (e.status === 401) throw e; }
  return h("p", { id: "account" }, "Account: ", name ? `${name} ` : null, h("code", {}, c.account_id), ` (${c.provider}).`);
}

async function accountsPage() {
  const body = h("tbody");
  const reload = serial(async () => {
    const list = await api("GET", "/provider-accounts?limit=100");
    setChildren(body, ...list.data.map((a) => h("tr", { "data-account-id": a.id },
      h("td", {}, a.name), h("td", {}, a.provider), h("td", {}, h("code", {}, a.id)),
      h("td", { class: "state" }, badge(a.enabled ? "enabled" : "disabled")),
      h("td", { class: "max-concurrent" }, a.max_concurrent ?? "no limit"),
      h("td", { class: "calls-per-second" }, a.calls_per_second ?? "provider's default"),
      h("td", { class: "wrap credentials" }, Object.entries(a.credentials).map(([k, v]) => h("div", {}, `${k}: `, h("code", {}, typeof v === "string" ? v : JSON.stringify(v))))),
      h("td", {}, a.enabled
        ? h("button", { class: "danger", "data-action": "disable", onclick: press(async () => {
          if (confirm(`Disable account "${a.name}"? Its campaigns are held and new work on it is refused.`)) { await api("DELETE", `/provider-accounts/${a.id}`); await reload(); }
        }) }, "Disable")
        : h("button", { "data-action": "enable", onclick: press(async () => { await api("PATCH", `/provider-accounts/${a.id}`, { enabled: true }); await reload(); }) }, "Enable")))));
    if (!list.data.length) setChildren(body, h("tr", {}, h("td", { colspan: 8, class: "notice" }, "No accounts yet: calls go through the server's.")));
  });
  const provider = h("select", { name: "provider", onchange: () => renderFields() }, Object.keys(ACCOUNT_FIELDS).map((p) => h("option", {}, p)));
  const fields = h("fieldset", { class: "credentials" });
  const renderFields = () => setChildren(fields, h("legend", {}, "Credentials"), ACCOUNT_FIELDS[provider.value].map(([name, kind, note]) =>
    kind === "bool"
      ? h("label", { class: "check" }, h("input", { type: "checkbox", name: `cred_${name}` }), name)
      : h("label", { title: note || null }, note ? `${name} (${note})` : name,
        h("input", { name: `cred_${name}`, type: kind === "secret" ? "password" : "text", autocomplete: "off" }))));
  renderFields();
  const form = h("form", { class: "card", id: "create-account", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    await attempt(async () => {
      const credentials = {};
      for (const [name, kind] of ACCOUNT_FIELDS[provider.value]) {
        const v = d.get(`cred_${name}`);
        if (kind === "bool") { if (v === "on") credentials[name] = true; } else if (v) credentials[name] = v;
      }
      const body = { provider: provider.value, name: d.get("name"), credentials };
      if (d.get("max_concurrent")) body.max_concurrent = Number(d.get("max_concurrent"));
      if (d.get("calls_per_second")) body.calls_per_second = Number(d.get("calls_per_second"));
      await api("POST", "/provider-accounts", body);
      form.reset();
      renderFields();
      await reload();
    }, form);
  } }, h("h2", {}, "New account"),
  h("div", { class: "row" },
    h("label", {}, "Provider", provider),
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("label", { title: "calls at once on this account, all its campaigns together; empty: no limit" }, "Max concurrent", h("input", { name: "max_concurrent", type: "number", min: 1 })),
    h("label", { title: "above 0, at most 1000; empty: the provider's default" }, "Calls per second", h("input", { name: "calls_per_second", type: "number", min: 0.001, max: 1000, step: "any" }))),
  fields,
  h("button", { type: "submit" }, "Create"));
  await reload();
  setChildren(main, h("h1", {}, "Provider accounts"),
    h("p", { class: "notice" }, "This workspace's own Vapi, Twilio and Exotel accounts: a campaign or batch that names one calls through it. Secrets are encrypted and shown by their last four characters only."),
    h("div", { class: "scroll" }, h("table", { id: "accounts" }, h("thead", {}, h("tr", {}, ["Name", "Provider", "Id", "State", "Max concurrent", "Calls per second", "Credentials", ""].map((t) => h("th", {}, t)))), body)),
    form);
}

// ---------- API keys and workspaces ----------

const SCOPES = ["read", "write", "admin"];

async function keysPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const workspaces = await api("GET", "/workspaces");
  const mine = workspaces.data.length === 1 ? workspaces.data[0].id : "";
  const ws = h("select", { name: "workspace_id", id: "keys-workspace" }, workspaces.data.map((w) => h("option", { value: w.id, selected: (params.get("workspace_id") || mine) === w.id || (!params.get("workspace_id") && w.is_default) }, w.name)));
  const body = h("tbody");
  const reload = serial(async () => {
    const list = await api("GET", `/keys${qs({ workspace_id: ws.value })}`);
    setChildren(body, ...list.data.map((k) => h("tr", { "data-key-id": k.id, class: k.revoked_at ? "revoked" : null },
      h("td", {}, k.name), h("td", {}, h("code", {}, k.prefix || "—")), h("td", { class: "scopes" }, k.scopes.join(", ")),
      h("td", {}, fmtTime(k.created_at)), h("td", {}, k.last_used_at ? fmtTime(k.last_used_at) : "never"),
      h("td", { class: "state" }, k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : h("button", { class: "danger", "data-action": "revoke", onclick: press(async () => {
        if (confirm(`Revoke key "${k.name}" (${k.prefix})? Every request with it fails from now on.`)) { await api("DELETE", `/keys/${k.id}`); await reload(); }
      }) }, "Revoke")))));
  });
  ws.onchange = () => { history.replaceState(null, "", `#/keys${qs({ workspace_id: ws.value })}`); attempt(reload); };
  const created = h("div");
  const form = h("form", { class: "card", id: "create-key", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    await attempt(async () => {
      const k = await api("POST", "/keys", { name: d.get("name"), scopes: d.getAll("scopes"), workspace_id: ws.value });
      setChildren(created, secretBox("new-key", `API key "${k.name}" (${k.scopes.join(", ")})`, k.key));
      form.reset();
      await reload();
    }, form);
  } }, h("h2", {}, "New key"), h("div", { class: "row" },
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("fieldset", { class: "events" }, h("legend", {}, "Scopes"), SCOPES.map((s) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "scopes", value: s, checked: s !== "admin" }), s))),
    h("button", { type: "submit" }, "Create")));
  await reload();
  setChildren(main, h("h1", {}, "API keys"),
    h("p", { class: "notice" }, "Keys are shown by their first characters only; a new key's secret is shown once. ",
      h("code", {}, "read"), ": GET; ", h("code", {}, "write"), ": changes; ", h("code", {}, "admin"), ": keys and workspaces."),
    h("form", { class: "row", onsubmit: (ev) => ev.preventDefault() }, h("label", {}, "Workspace", ws)),
    created,
    h("div", { class: "scroll" }, h("table", { id: "keys" }, h("thead", {}, h("tr", {}, ["Name", "Prefix", "Scopes", "Created", "Last used", ""].map((t) => h("th", {}, t)))), body)),
    form);
}

/** The workspace's caller_number_daily_limit (calls per caller number per UTC day); empty: none. */
function dailyLimitForm(w, after) {
  const input = h("input", { name: "caller_number_daily_limit", type: "number", min: 1, max: 1000000, placeholder: "no limit", value: w.caller_number_daily_limit ?? "" });
  const form = h("form", { class: "daily-limit", onsubmit: (ev) => {
    ev.preventDefault();
    const limit = input.value === "" ? null : Number(input.value);
    attempt(async () => { await api("PATCH", `/workspaces/${w.id}`, { caller_number_daily_limit: limit }); await after(); }, form);
  } }, input, " ", h("button", { type: "submit", class: "secondary" }, "Set"));
  return form;
}

async function workspacesPage() {
  const body = h("tbody");
  const reload = serial(async () => {
    const list = await api("GET", "/workspaces");
    setChildren(body, ...list.data.map((w) => h("tr", { "data-workspace-id": w.id },
      h("td", {}, w.name, w.is_default ? h("span", { class: "notice" }, " (operator)") : null), h("td", {}, h("code", {}, w.id)),
      h("td", { class: "state" }, badge(w.disabled_at ? "disabled" : "enabled")), h("td", {}, fmtTime(w.created_at)),
      h("td", {}, dailyLimitForm(w, reload)),
      h("td", {}, h("span", { class: "actions" },
        h("a", { class: "button secondary", href: `#/keys?workspace_id=${w.id}` }, "Keys"),
        w.is_default ? null : h("button", { class: w.disabled_at ? "" : "danger", "data-action": w.disabled_at ? "enable" : "disable", onclick: press(async () => {
          if (w.disabled_at || confirm(`Disable workspace "${w.name}"? Its keys get 401 at once.`)) {
            await api("PATCH", `/workspaces/${w.id}`, { disabled: !w.disabled_at });
            await reload();
          }
        }) }, w.disabled_at ? "Enable" : "Disable"))))));
  });
  const created = h("div");
  const form = h("form", { class: "card", id: "create-workspace", onsubmit: async (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    await attempt(async () => {
      const body = { name: d.get("name") };
      if (d.get("key_name")) body.key = { name: d.get("key_name") };
      const r = await api("POST", "/workspaces", body);
      setChildren(created, r.key ? secretBox("new-key", `First key of ${r.workspace.name} (${r.key.scopes.join(", ")})`, r.key.key) : h("p", { class: "notice" }, `Created ${r.workspace.id}.`));
      form.reset();
      await reload();
    }, form);
  } }, h("h2", {}, "New workspace"), h("div", { class: "row" },
    h("label", {}, "Name", h("input", { name: "name", required: true })),
    h("label", {}, "First key's name (optional)", h("input", { name: "key_name" })),
    h("button", { type: "submit" }, "Create")));
  await reload();
  setChildren(main, h("h1", {}, "Workspaces"),
    h("p", { class: "notice" }, "Each workspace sees only its own campaigns, calls and keys. The operator's admin key manages them all."),
    created,
    h("div", { class: "scroll" }, h("table", { id: "workspaces" }, h("thead", {}, h("tr", {}, ["Name", "Id", "State", "Created", "Calls per caller number a day", ""].map((t) => h("th", {}, t)))), body)),
    form);
}

// ---------- start ----------

function start() {
  document.getElementById("nav").hidden = false;
  openStream();
  route();
}

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => { if (sessionStorage.getItem(KEY)) route(); });
if (sessionStorage.getItem(KEY)) start(); else signInPage();
