// The pair inspector: a person's circle with the matcher's decision about each partner, and
// one pair's full record (GET /api/circle, GET /api/explain). Plain code, no libraries.
"use strict";
const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem("realconnect.admin") || ""; }
function showLogin(message) {
  $("login").hidden = false; $("inspector").hidden = true;
  $("login-error").textContent = message || "";
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
function num(v) { return v === null || v === undefined ? "–" : (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)); }

// widths set through the CSSOM: the page's CSP (style-src 'self') refuses inline style attributes
function sizeBars(root) {
  for (const el of root.querySelectorAll("[data-width]")) el.style.width = el.dataset.width + "%";
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  if (r.status === 401) { showLogin("That token was not accepted."); throw new Error("unauthorised"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || body.title || "HTTP " + r.status);
  return body;
}

function verdict(d) {
  if (d.tracked === false) return '<span class="badge down">not tracked</span>';
  return d.suggested ? '<span class="badge">suggested</span>' : '<span class="badge down">not suggested</span>';
}

async function inspect(person) {
  $("search-error").textContent = ""; $("pair-panel").hidden = true;
  $("status").textContent = "reading the matcher's state…";
  try {
    const c = await api("/api/circle?person=" + encodeURIComponent(person));
    $("who").textContent = c.person;
    $("circle-size").textContent = `· ${c.partners.length} kept of ${c.partners_seen} partners seen, ${c.exchanges} exchanges`;
    $("circle").tBodies[0].innerHTML = c.partners.map((p) =>
      `<tr data-partner="${esc(p.partner)}" data-suggested="${p.suggested === true}" data-decided-by="${esc(p.decided_by || "")}">` +
      `<td>${p.rank}</td><td>${esc(p.partner)}</td><td>${pct(p.share)}</td><td>${verdict(p)}</td>` +
      `<td>${esc(p.decided_by || "")}</td><td>${p.probability === null || p.probability === undefined ? "–" : p.probability.toFixed(3)}</td>` +
      `<td>${esc(p.would_change || "")}</td>` +
      `<td>${p.tracked ? `<button type="button" data-open="${esc(p.partner)}">open</button>` : ""}</td></tr>`).join("");
    $("circle-panel").hidden = false;
    history.replaceState(null, "", "/inspect?person=" + encodeURIComponent(c.person));
    $("status").textContent = "";
  } catch (e) {
    $("circle-panel").hidden = true; $("status").textContent = "";
    if (e.message !== "unauthorised") $("search-error").textContent = e.message;
  }
}

async function openPair(a, b) {
  $("status").textContent = "reading the pair's record…";
  try {
    const d = await api("/api/explain?a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b));
    $("pair").textContent = `${a} · ${b}`;
    $("pair-verdict").innerHTML = verdict(d);
    const ex = Object.entries(d.exchanges || {}).map(([k, v]) => `${esc(k)}: ${v}`).join(", ");
    const when = d.suggested ? `Suggested at ${esc(d.at)} (the record the suggestion carried).` :
      `Decided by <b>${esc(d.decided_by)}</b> as of the latest exchange (${esc(d.at)}). What would change it: ${esc(d.would_change || "–")}.`;
    const dv = d.delivery;
    const actions = { deliver: "delivered", hold: "held", drop: "not delivered" };
    const delivery = dv ? ` Notifier: <b data-testid="delivery">${esc(actions[dv.action] || dv.action)}</b>` +
      (dv.decided_by ? ` (${esc(dv.decided_by)}${dv.until ? ", until " + esc(dv.until) : ""})` : "") + "." : "";
    $("pair-summary").innerHTML = `${when} Meaningful exchanges ${ex}; last ${esc(d.last_exchange_at || "–")}.${delivery}`;
    $("gates").tBodies[0].innerHTML = d.gates.map((g) =>
      `<tr data-gate="${esc(g.name)}" data-passed="${g.passed}" class="${g.passed ? "" : "growing"}"><td>${esc(g.name)}</td>` +
      `<td>${g.passed ? "✓ pass" : "✗ fail"}</td><td>${esc(num(g.value))}</td><td>${esc(num(g.threshold))}</td><td>${esc(g.says || "")}</td></tr>`).join("");
    $("model").textContent = d.model ? `${d.model} · probability ${num(d.probability)}` : "none";
    $("contributions").tBodies[0].innerHTML = (d.contributions || []).map((c) =>
      `<tr><td>${esc(c.feature)}</td><td>${pct(c.share)}</td><td class="bar-cell"><div class="bar${c.share < 0 ? " negative" : ""}" data-width="${Math.min(100, Math.abs(100 * c.share)).toFixed(1)}"></div></td></tr>`).join("");
    sizeBars($("contributions"));
    $("now").textContent = d.suggested && d.now ? `Now: ${d.now.decided_by ? "held by " + d.now.decided_by + " — " + (d.now.would_change || "") : "would be suggested"}` : "";
    $("pair-panel").hidden = false; $("status").textContent = "";
    $("pair-panel").scrollIntoView({ block: "nearest" });
  } catch (e) {
    $("status").textContent = "";
    if (e.message !== "unauthorised") $("search-error").textContent = e.message;
  }
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("realconnect.admin", $("token").value);
  $("login").hidden = true; $("inspector").hidden = false;
  start();
});
$("search").addEventListener("submit", (e) => { e.preventDefault(); inspect($("person").value.trim()); });
$("circle").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-open]");
  if (b) openPair($("who").textContent, b.dataset.open);
});

function start() {
  const person = new URLSearchParams(location.search).get("person");
  if (person) { $("person").value = person; inspect(person); }
}
if (token()) { $("inspector").hidden = false; start(); } else { showLogin(); }
