// The operator console: polls /api/stats every second and /api/dead-letters every five.
// Plain code, no libraries: it works with no internet.
"use strict";
const $ = (id) => document.getElementById(id);
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const COLORS = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00", "#c92a2a", "#5f3dc4"];
let previousLag = {};

function token() { return sessionStorage.getItem("realconnect.admin") || ""; }
function showLogin(message) {
  $("login").hidden = false; $("console").hidden = true;
  $("login-error").textContent = message || "";
}
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("realconnect.admin", $("token").value);
  $("login").hidden = true; $("console").hidden = false;
  refresh(); refreshDead();
});

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  if (r.status === 401) { showLogin("That token was not accepted."); throw new Error("unauthorised"); }
  if (!r.ok) throw new Error("HTTP " + r.status);
  return r.json();
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function fmtRate(n) { return compact.format(n) + "/s"; }

function renderFunnel(funnel) {
  const top = Math.max(1, funnel[0].count);
  $("funnel").tBodies[0].innerHTML = funnel.map((s, i) => {
    const prev = i ? funnel[i - 1].count : null;
    const conv = prev ? ` <span class="muted">(${(100 * s.count / prev).toFixed(1)}%)</span>` : "";
    return `<tr><td>${esc(s.stage)}</td><td data-stage="${esc(s.stage)}" title="${s.count}">${compact.format(s.count)}${conv}</td>` +
           `<td class="bar-cell"><div class="bar" data-width="${(100 * s.count / top).toFixed(2)}"></div></td></tr>`;
  }).join("");
  // widths set through the CSSOM: the page's CSP (style-src 'self') refuses inline style attributes
  for (const el of $("funnel").querySelectorAll("[data-width]")) el.style.width = el.dataset.width + "%";
}

function renderChart(rates) {
  const sources = Object.keys(rates).filter((k) => k !== "start");
  const n = sources.length ? rates[sources[0]].length : 0;
  const max = Math.max(1, ...sources.flatMap((s) => rates[s]));
  $("chart").innerHTML = sources.map((s, i) => {
    const pts = rates[s].map((v, x) => `${(600 * x / Math.max(1, n - 1)).toFixed(1)},${(155 - 150 * v / max).toFixed(1)}`).join(" ");
    return `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts}"/>`;
  }).join("");
  $("legend").innerHTML = sources.map((s, i) => {
    const last = rates[s].slice(-5).reduce((a, b) => a + b, 0) / 5;
    return `<span><span class="swatch" data-color="${COLORS[i % COLORS.length]}"></span> ${esc(s)} ${fmtRate(last)}</span>`;
  }).join("");
  // the series' colour on a swatch, the words in the text's own colour (contrast)
  for (const el of $("legend").querySelectorAll("[data-color]")) el.style.backgroundColor = el.dataset.color;
  const total = sources.reduce((sum, s) => sum + rates[s].slice(-5).reduce((a, b) => a + b, 0) / 5, 0);
  $("rate-now").textContent = "now " + fmtRate(total) + ", peak " + fmtRate(max);
}

function renderLag(lags) {
  const next = {};
  $("lag").tBodies[0].innerHTML = lags.map((l) => {
    const key = l.group + "/" + l.topic;
    next[key] = l.lag;
    const growing = previousLag[key] !== undefined && l.lag > previousLag[key];
    const parts = Object.entries(l.partitions).map(([p, v]) => `${p}:${compact.format(v)}`).join(" ");
    return `<tr class="${growing ? "growing" : ""}" data-growing="${growing}"><td>${esc(l.group)}</td><td>${esc(l.topic)}</td><td>${parts}</td><td>${compact.format(l.lag)}${growing ? " ↑" : ""}</td></tr>`;
  }).join("");
  previousLag = next;
}

function renderHealth(health) {
  $("health").innerHTML = Object.entries(health).map(([name, state]) =>
    `<span class="badge ${state === "up" ? "" : "down"}" data-service="${esc(name)}" data-state="${esc(state)}">${esc(name)}: ${esc(state)}</span>`).join("");
}

function renderConnectors(list) {
  if (!list || !list.length) return;
  $("connectors").tBodies[0].innerHTML = list.map((c) => {
    const ok = c.state === "live";
    const lag = c.lag_s === null || c.lag_s === undefined ? "–" : (c.lag_s < 90 ? `${c.lag_s.toFixed(1)} s` : `${compact.format(c.lag_s / 60)} min`);
    return `<tr data-connector="${esc(c.name)}" data-state="${esc(c.state)}"><td>${esc(c.name)}</td>` +
      `<td><span class="badge ${ok ? "" : "down"}">${esc(c.state)}</span></td>` +
      `<td>${compact.format(c.forwarded)}</td><td>${compact.format(c.duplicates)}</td><td>${compact.format(c.rejected)}</td>` +
      `<td>${compact.format(c.reconnects)}</td><td>${lag}</td></tr>`;
  }).join("");
}

function renderMatcher(m, aborts) {
  const body = $("matcher").tBodies[0];
  const n = (v) => (v === null || v === undefined ? "–" : compact.format(v));
  // aborts are counted in Redis as a worker stops: shown even while no matcher answers
  const abortCell = `<td data-testid="transaction-aborts">${n(aborts || 0)}</td>`;
  if (!m) { body.innerHTML = `<tr><td colspan="7" class="muted">not answering</td>${abortCell}</tr>`; return; }
  body.innerHTML = `<tr><td>${n(m.events_per_s)}</td><td>${n(m.batches_per_s)}</td><td>${n(m.records_per_batch)}</td>` +
    `<td>${n(m.ms_per_batch)}</td><td>${n(m.state_writes_per_s)}</td><td>${n(m.transactions_per_s)}</td>` +
    `<td>${n(m.totals.fallbacks || 0)}</td>${abortCell}</tr>`;
}

async function refresh() {
  if (!token()) { showLogin(); return; }
  try {
    const s = await api("/api/stats");
    for (const k of ["interactions_in", "pairs_tracked", "suggestions_emitted", "group_suggestions", "suggestions_delivered", "feed_items", "dead_letters"]) {
      $(k).textContent = compact.format(s[k]); $(k).title = s[k].toLocaleString("en"); $(k).dataset.raw = s[k];
    }
    renderFunnel(s.funnel); renderChart(s.rates); renderLag(s.lag); renderHealth(s.health); renderConnectors(s.connectors); renderMatcher(s.matcher, s.transaction_aborts);
    $("redis").textContent = `Redis: ${compact.format(s.redis.used_memory)}B used, ${compact.format(s.redis.keys)} keys`;
    $("status").className = "muted"; $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.message !== "unauthorised") { $("status").className = "error"; $("status").textContent = "cannot reach the console API: " + e.message; }
  }
}

async function refreshDead() {
  if (!token()) return;
  try {
    const items = await api("/api/dead-letters?limit=25");
    $("dlq").innerHTML = items.length ? items.map((d) =>
      `<details data-reason="${esc(d.reason)}"><summary><b>${esc(d.reason)}</b> · ${esc(d.service)} · ${esc(d.source_topic)} ` +
      `<span class="muted">${new Date(d.timestamp * 1000).toLocaleString()} · ${esc(d.error).slice(0, 140)}</span></summary>` +
      `<pre>${esc(d.payload)}</pre></details>`).join("") : '<p class="muted">none</p>';
  } catch (e) { /* the stats poll reports connectivity */ }
}

if (token()) { $("console").hidden = false; } else { showLogin(); }
refresh(); refreshDead();
setInterval(refresh, 1000);
setInterval(refreshDead, 5000);
