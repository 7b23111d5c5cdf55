// The admin page: reads the admin API of the app serving it and renders tables.
"use strict";

const tokenKey = "fairway-admin-token";
let olderCursor = null;

function headers() {
  const token = sessionStorage.getItem(tokenKey);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    document.getElementById("token-form").hidden = false;
  }
  if (!response.ok) {
    throw new Error(`${path}: ${response.status} ${body.error || ""}`);
  }
  return body;
}

function cell(row, text, code) {
  const td = row.insertCell();
  if (code) {
    const pre = document.createElement("pre");
    pre.textContent = text;
    td.appendChild(pre);
  } else {
    td.textContent = text;
  }
  return td;
}

function showError(error) {
  const element = document.getElementById("error");
  element.textContent = String(error.message || error);
  element.hidden = false;
}

async function loadStats() {
  const stats = await api("/admin/api/stats");
  const bytes = stats.bytes_on_disk == null ? "" : `, ${(stats.bytes_on_disk / 1048576).toFixed(1)} MiB on disk`;
  document.getElementById("stats").textContent =
    `Namespace ${stats.namespace}, ${stats.events} events, head ${stats.head || "(empty)"}${bytes}, ` +
    `${stats.commands} commands, ${stats.views} views, ${stats.automations} automations`;
}

async function loadEvents(append) {
  const form = new FormData(document.getElementById("event-filters"));
  const query = new URLSearchParams({ backwards: "true", limit: "50" });
  for (const name of ["type", "tag"]) {
    const value = (form.get(name) || "").trim();
    if (value) query.append(name, value);
  }
  if (append && olderCursor) query.set("from", olderCursor);
  const page = await api(`/admin/api/events?${query}`);
  const body = document.querySelector("#events tbody");
  if (!append) body.replaceChildren();
  for (const event of page.events) {
    const row = body.insertRow();
    row.dataset.position = event.position;
    cell(row, event.position, true);
    cell(row, event.type);
    cell(row, event.tags.join(" "));
    cell(row, JSON.stringify(event.payload ?? event.payload_hex), true);
  }
  olderCursor = page.next_cursor;
  document.getElementById("older").hidden = !olderCursor;
}

async function loadViews() {
  const slices = await api("/slices");
  const container = document.getElementById("views");
  container.replaceChildren();
  for (const view of slices.views) {
    const page = await api(`/admin/api/views/${encodeURIComponent(view.name)}?limit=100`);
    const heading = document.createElement("h3");
    heading.textContent = `${view.name} (${page.documents.length}${page.next_cursor ? "+" : ""} documents)`;
    const table = document.createElement("table");
    table.className = "view";
    table.dataset.view = view.name;
    for (const doc of page.documents) {
      const row = table.insertRow();
      cell(row, doc.key);
      cell(row, JSON.stringify(doc.doc), true);
    }
    container.append(heading, table);
  }
}

async function loadProgress() {
  const progress = await api("/admin/api/progress");
  const body = document.querySelector("#progress tbody");
  body.replaceChildren();
  for (const view of progress.views) {
    const row = body.insertRow();
    [view.name, view.version, view.active ? "yes" : "no", view.processed, view.remaining].forEach((v) => cell(row, String(v)));
  }
}

async function loadAutomations() {
  const list = await api("/admin/api/automations");
  const container = document.getElementById("automations");
  container.replaceChildren();
  for (const automation of list.automations) {
    const name = encodeURIComponent(automation.name);
    const heading = document.createElement("h3");
    heading.textContent = `${automation.name}: ${automation.pending} pending (${automation.leased} running), ${automation.dead_letters} dead letters`;
    container.append(heading);
    const dead = await api(`/admin/api/automations/${name}/dead-letters`);
    if (dead.length === 0) continue;
    const table = document.createElement("table");
    for (const letter of dead) {
      const row = table.insertRow();
      cell(row, JSON.stringify(letter), true);
      const replay = document.createElement("button");
      replay.textContent = "Replay";
      replay.onclick = () => act(`/admin/api/automations/${name}/dead-letters/${letter.position}/replay`, "POST");
      row.insertCell().append(replay);
    }
    const purge = document.createElement("button");
    purge.textContent = `Purge ${automation.name}`;
    purge.onclick = () => confirm(`Purge every dead letter of ${automation.name}?`) && act(`/admin/api/automations/${name}/dead-letters`, "DELETE");
    container.append(table, purge);
  }
}

async function act(path, method) {
  try {
    await api(path, { method });
    await loadAutomations();
  } catch (error) {
    showError(error);
  }
}

async function loadAll() {
  document.getElementById("error").hidden = true;
  try {
    await loadStats();
    await Promise.all([loadEvents(false), loadViews(), loadProgress(), loadAutomations()]);
    document.body.dataset.loaded = "true";
  } catch (error) {
    showError(error);
  }
}

document.getElementById("event-filters").addEventListener("submit", (e) => { e.preventDefault(); loadEvents(false).catch(showError); });
document.getElementById("older").addEventListener("click", () => loadEvents(true).catch(showError));
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(tokenKey, document.getElementById("token").value);
  document.getElementById("token-form").hidden = true;
  loadAll();
});
loadAll();
