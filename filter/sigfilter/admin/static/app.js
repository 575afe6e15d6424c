// The preview page: asks the server for the catalog and one user's signature, and
// asks again whenever the server announces a reload (server-sent events).
"use strict";

const $ = (sel) => document.querySelector(sel);
const view = { catalog: null, tenant: "", user: "" };

function todayISO() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function choice(name) {
  return document.querySelector(`input[name="${name}"]:checked`).value;
}

async function getJSON(url, init) {
  const response = await fetch(url, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function frameDoc(html) {
  // Outlook's default body font, so the signature sits in something like a message.
  return '<!doctype html><html><head><meta charset="utf-8"><style>' +
    'body{margin:10px;font-family:Aptos,Calibri,Arial,sans-serif;font-size:11pt;color:#000}' +
    "</style></head><body>" + html + "</body></html>";
}

function fitHeight(frame) {
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (doc && doc.body) frame.style.height = Math.max(60, doc.body.scrollHeight + 24) + "px";
  });
}

function showProblems(summary) {
  const box = $("#problems");
  const list = $("#problem-list");
  list.replaceChildren(...summary.problems.map((p) => {
    const li = document.createElement("li");
    li.textContent = p;
    return li;
  }));
  box.hidden = summary.problems.length === 0;
  $("#problems-note").textContent = summary.stale
    ? `Shown below: version ${summary.shown_version}, the last one that compiled. Fix the files and save: the page updates by itself.`
    : "Nothing compiled yet. Fix the files and save: the page updates by itself.";
  document.body.classList.toggle("stale", summary.problems.length > 0);
}

function showStatus(summary) {
  const when = new Date(summary.loaded_at * 1000).toLocaleTimeString();
  const status = $("#status");
  status.textContent = `${summary.catalog} · version ${summary.version} · loaded ${when}` +
    (summary.problems.length ? ` · ${summary.problems.length} problem(s)` : "");
  status.classList.toggle("stale", summary.problems.length > 0);
  document.body.dataset.version = summary.version;
}

function fillTenants(summary) {
  const select = $("#tenant");
  const keys = summary.tenants.map((t) => t.key);
  if (!keys.includes(view.tenant)) view.tenant = keys[0] || "";
  select.replaceChildren(...summary.tenants.map((t) => new Option(`${t.name} (${t.key})`, t.key)));
  select.value = view.tenant;
}

function currentTenant() {
  return (view.catalog?.tenants || []).find((t) => t.key === view.tenant);
}

function fillUsers() {
  const tenant = currentTenant();
  const users = tenant ? tenant.users : [];
  if (!users.some((u) => u.email === view.user)) view.user = users.length ? users[0].email : "";
  const words = $("#search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = users.filter((u) => {
    const hay = Object.values(u).join(" ").toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  $("#users").replaceChildren(...shown.map((u) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.email = u.email;
    button.setAttribute("aria-pressed", String(u.email === view.user));
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = u.display_name || u.email;
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = [u.email, u.job_title, u.department].filter(Boolean).join(" · ");
    button.append(who, what);
    button.addEventListener("click", () => { view.user = u.email; fillUsers(); renderSignature(); });
    li.append(button);
    return li;
  }));
  $("#user-count").textContent = `${shown.length} of ${users.length} users`;
}

async function loadCatalog() {
  const summary = await getJSON("/api/catalog");
  view.catalog = summary;
  showStatus(summary);
  showProblems(summary);
  fillTenants(summary);
  fillUsers();
}

async function renderSignature() {
  const decision = $("#decision");
  if (!view.tenant || !view.user) {
    decision.textContent = "No user selected.";
    return;
  }
  const params = new URLSearchParams({
    tenant: view.tenant, user: view.user, variant: choice("variant"),
    scope: choice("scope"), date: $("#date").value,
  });
  try {
    const r = await getJSON("/api/render?" + params);
    const banner = r.banner
      ? ` · banner ${r.banner.on ? "shown" : "not shown"} on this date (runs ${r.banner.start || "…"} to ${r.banner.end || "…"})`
      : "";
    decision.textContent = r.reason === "ok"
      ? `${view.user}: rule "${r.rule}"${banner} · recipient ${r.recipient}`
      : `${view.user}: no signature (${r.reason}: ${r.detail})`;
    decision.dataset.rule = r.rule;
    decision.classList.remove("error");
    $("#html-frame").srcdoc = frameDoc(r.html);
    $("#text-sig").textContent = r.text;
  } catch (err) {
    decision.textContent = `Cannot render: ${err.message}`;
    decision.classList.add("error");
  }
}

function setWidth() {
  for (const frame of document.querySelectorAll(".html-pane iframe")) {
    frame.style.width = $("#width").value + "px";
  }
}

// -- a dropped message ---------------------------------------------------------------

async function signMessage(file) {
  const params = new URLSearchParams({
    sender: $("#drop-sender").value.trim(), mode: $("#drop-mode").value, date: $("#date").value,
  });
  const result = $("#drop-result");
  const rows = $("#drop-decision tbody");
  try {
    const r = await getJSON("/api/sign?" + params, {
      method: "POST", body: await file.arrayBuffer(),
      headers: { "Content-Type": "application/octet-stream" },
    });
    rows.replaceChildren(...[["file", file.name], ...Object.entries(r.decision)].map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.dataset.field = k;
      const th = document.createElement("th");
      th.textContent = k;
      const td = document.createElement("td");
      td.textContent = Array.isArray(v) ? v.join(", ") : v === null ? "" : String(v);
      tr.append(th, td);
      return tr;
    }));
    $("#drop-html").srcdoc = frameDoc(r.html);
    $("#drop-text").textContent = r.text;
    $("#drop-source").textContent = r.message;
  } catch (err) {
    rows.replaceChildren();
    const tr = document.createElement("tr");
    tr.className = "error";
    tr.textContent = `Cannot sign ${file.name}: ${err.message}`;
    rows.append(tr);
  }
  result.hidden = false;
}

function setUpDrop() {
  const zone = $("#dropzone");
  // A file dropped anywhere else must not make the browser navigate away to it.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener("dragover", () => zone.classList.add("over"));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) signMessage(file);
  });
  $("#eml-file").addEventListener("change", (e) => {
    if (e.target.files[0]) signMessage(e.target.files[0]);
  });
  $("#use-user").addEventListener("click", () => { $("#drop-sender").value = view.user; });
}

// -- live updates ----------------------------------------------------------------------

function listen() {
  const events = new EventSource("/events");
  events.addEventListener("catalog", async () => {
    await loadCatalog();
    await renderSignature();
  });
  events.onerror = () => { $("#status").textContent = "server not reachable: retrying…"; };
}

function start() {
  $("#date").value = todayISO();
  fitHeight($("#html-frame"));
  fitHeight($("#drop-html"));
  $("#tenant").addEventListener("change", (e) => { view.tenant = e.target.value; view.user = ""; fillUsers(); renderSignature(); });
  $("#search").addEventListener("input", fillUsers);
  $("#controls").addEventListener("change", () => { setWidth(); renderSignature(); });
  setWidth();
  setUpDrop();
  listen();  // its first event loads the catalog and renders
}

start();
