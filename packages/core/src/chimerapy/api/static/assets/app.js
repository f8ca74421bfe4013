"use strict";
// The ChimeraPy dashboard: a view of GET /api/state kept live by the WebSocket /api/events.
// Plain DOM, no framework; every text from the cluster is set with textContent, never as HTML.

const LOG_LINES = 200;
const ERRORS_SHOWN = 20;
const RUNNING = ["running", "stepping"];

const model = {
  state: null, session: null, workers: {}, lost: [], nodes: {}, graph: { nodes: [], edges: [] },
  errors: [], clock: {}, previews: {},
};
const log = [];

// -- helpers -------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

const number = (value, digits = 1) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const clockTime = (seconds) => {
  const time = new Date(seconds * 1000);
  return `${time.toTimeString().slice(0, 8)}.${String(time.getMilliseconds()).padStart(3, "0")}`;
};
const dateTime = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "–");

function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let index = 0;
  while (size >= 1024 && index < units.length - 1) { size /= 1024; index += 1; }
  return `${index ? size.toFixed(1) : size} ${units[index]}`;
}

async function api(method, path) {
  const response = await fetch(path, { method, headers: { Accept: "application/json" } });
  if (response.status === 401) {
    location.href = "/login";
    throw new Error("the dashboard needs the cluster token");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${method} ${path}: ${response.status} ${response.statusText}`);
  return body;
}

function notify(message, kind = "info") {
  const notice = $("notice");
  notice.textContent = message;
  notice.dataset.kind = kind;
  notice.hidden = !message;
}

// -- the model -----------------------------------------------------------------------------------

function applyState(state) {
  model.state = state.state;
  model.session = state.session;
  model.workers = state.workers || {};
  model.lost = state.lost_workers || [];
  model.nodes = state.nodes || {};
  model.graph = state.graph || { nodes: [], edges: [] };
  model.errors = state.errors || [];
  model.clock = state.clock_offsets || {};
}

async function refreshState() {
  try {
    applyState(await api("GET", "/api/state"));
    render();
  } catch (error) {
    notify(error.message, "error");
  }
}

function addLog(record) {
  const source = [record.worker, record.node].filter(Boolean).join("/");
  showLog([`${clockTime(record.time || Date.now() / 1000)} ${(record.level || "INFO").padEnd(7)} [${source}] ${record.message || ""}`]);
}

function showLog(lines) {
  log.push(...lines);
  if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  const pre = $("log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = log.join("\n");
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function handle(event) {
  switch (event.type) {
    case "snapshot":
      applyState(event);
      model.previews = event.previews || {};
      log.length = 0;
      showLog(event.log_tail || []);
      render();
      renderPreviews();
      refreshArchive();
      break;
    case "state":
      model.state = event.state;
      model.session = event.session;
      render();
      if (event.state === "committed") refreshState();
      if (!RUNNING.includes(event.state)) refreshArchive();
      break;
    case "workers":
      refreshState();
      break;
    case "node_state":
      model.nodes[event.node] = { ...(model.nodes[event.node] || {}), state: event.state };
      scheduleRender();
      break;
    case "stats":
      for (const [name, stats] of Object.entries(event.nodes)) {
        model.nodes[name] = { ...(model.nodes[name] || {}), stats };
      }
      scheduleRender();
      break;
    case "error":
      model.errors.push(event);
      scheduleRender();
      break;
    case "log":
      addLog(event);
      break;
    case "preview":
      model.previews[event.node] = event.records;
      showPreview(event.node, event.records);
      break;
    case "collect":
      notify(`Collecting from ${event.worker}: ${event.path} (${bytes(event.done)} of ${bytes(event.total)})`);
      break;
    case "dropped":
      addLog({ time: event.time, level: "WARNING", message: `the dashboard fell behind: ${event.count} events skipped` });
      refreshState();
      break;
    default:
      break;
  }
}

let renderTimer = null;
function scheduleRender() {
  if (renderTimer === null) renderTimer = setTimeout(() => { renderTimer = null; render(); }, 200);
}

// -- rendering -----------------------------------------------------------------------------------

function render() {
  const badge = $("cluster-state");
  badge.textContent = model.state || "…";
  badge.dataset.state = model.state || "";
  $("session").textContent = model.session || "none";
  $("start").disabled = model.state !== "committed";
  $("stop").disabled = ![...RUNNING, "committed"].includes(model.state);
  $("collect").disabled = model.state !== "stopped";
  renderWorkers();
  renderNodes();
  renderGraph();
  renderErrors();
}

function renderWorkers() {
  const names = [...new Set([...Object.keys(model.workers), ...model.lost])].sort();
  const rows = names.map((name) => {
    const info = model.workers[name];
    const offset = model.clock[name];
    return el("tr", {},
      el("td", {}, el("strong", {}, name)),
      el("td", {}, info ? `${info.hostname || ""} ${info.host ? `(${info.host})` : ""}` : "–"),
      el("td", {}, info ? info.pid : "–"),
      el("td", { title: "measured over the session; shown once collected" },
        offset === undefined || offset === null ? "–" : `${number(offset * 1000, 2)} ms`),
      el("td", {}, el("span", { className: "badge", "data-state": info ? "connected" : "lost" }, info ? "connected" : "lost")));
  });
  $("workers").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, className: "muted" }, "No Worker connected."))]));
}

function inputLines(inputs) {
  return Object.entries(inputs || {}).map(([producer, edge]) => el("div", { className: "input" },
    el("span", { className: "producer" }, producer), " ",
    el("span", { className: edge.lost ? "bad" : "" }, `${edge.received} / ${edge.lost} / ${edge.skipped}`),
    el("span", { className: "muted" }, ` · ${number(edge.latency_p50_ms)} / ${number(edge.latency_p99_ms)} ms`)));
}

function renderNodes() {
  const names = Object.keys(model.nodes).sort();
  const errors = {};
  for (const error of model.errors) errors[error.node] = (errors[error.node] || 0) + 1;
  const rows = names.map((name) => {
    const node = model.nodes[name];
    const stats = node.stats || {};
    const count = Math.max(errors[name] || 0, stats.step_errors || 0); // reports, or every failed step
    return el("tr", { "data-node": name },
      el("td", {}, el("strong", {}, name)),
      el("td", {}, node.worker || "–"),
      el("td", {}, el("span", { className: "badge", "data-state": node.state || "" }, node.state || "–")),
      el("td", { className: "num" }, stats.rate === undefined ? "–" : `${number(stats.rate)}/s`),
      el("td", { className: "num" }, stats.steps ?? "–"),
      el("td", { className: "num" }, stats.outputs ?? "–"),
      el("td", {}, inputLines(stats.inputs)),
      el("td", { className: count ? "num bad" : "num" }, count));
  });
  $("nodes").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, className: "muted" }, "No graph committed."))]));
}

function renderGraph() {
  const { nodes, edges } = model.graph;
  const area = $("graph");
  area.replaceChildren();
  if (!nodes.length) {
    area.setAttribute("viewBox", "0 0 300 40");
    area.style.maxWidth = "300px";
    const text = svg("text", { x: 0, y: 24, class: "muted" });
    text.textContent = "No graph committed.";
    area.append(text);
    return;
  }
  // layer = the longest path from a source, so every edge points right
  const layer = Object.fromEntries(nodes.map((node) => [node.name, 0]));
  for (let pass = 0; pass < nodes.length; pass += 1) {
    for (const edge of edges) layer[edge.target] = Math.max(layer[edge.target], layer[edge.source] + 1);
  }
  const columns = {};
  for (const node of nodes) (columns[layer[node.name]] ||= []).push(node.name);
  const width = 150, height = 34, gapX = 60, gapY = 18;
  const position = {};
  for (const [column, names] of Object.entries(columns)) {
    names.sort().forEach((name, row) => { position[name] = { x: 10 + column * (width + gapX), y: 10 + row * (height + gapY) }; });
  }
  const maxX = Math.max(...Object.values(position).map((p) => p.x)) + width + 10;
  const maxY = Math.max(...Object.values(position).map((p) => p.y)) + height + 10;
  area.setAttribute("viewBox", `0 0 ${maxX} ${maxY}`);
  area.style.maxWidth = `${maxX}px`; // never drawn larger than life
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  area.append(defs);
  for (const edge of edges) {
    const from = position[edge.source], to = position[edge.target];
    if (!from || !to) continue;
    const x1 = from.x + width, y1 = from.y + height / 2, x2 = to.x, y2 = to.y + height / 2;
    const line = svg("path", {
      d: `M ${x1} ${y1} C ${x1 + gapX / 2} ${y1}, ${x2 - gapX / 2} ${y2}, ${x2} ${y2}`,
      class: `edge${edge.follow ? " follow" : ""}${edge.latest_only ? " latest" : ""}`, "marker-end": "url(#arrow)",
    });
    const title = svg("title");
    title.textContent = `${edge.source} → ${edge.target}${edge.follow ? " (followed)" : ""}${edge.latest_only ? " (latest only)" : ""}`;
    line.append(title);
    area.append(line);
  }
  for (const node of nodes) {
    const { x, y } = position[node.name];
    const state = (model.nodes[node.name] || {}).state || "";
    const group = svg("g", { class: "graph-node", "data-state": state });
    group.append(svg("rect", { x, y, width, height, rx: 6 }));
    const label = svg("text", { x: x + width / 2, y: y + height / 2 + 4, "text-anchor": "middle" });
    label.textContent = node.name.length > 20 ? `${node.name.slice(0, 19)}…` : node.name;
    const title = svg("title");
    title.textContent = `${node.name} (${node.class}): ${state || "?"}`;
    group.append(label, title);
    area.append(group);
  }
}

function renderErrors() {
  const shown = model.errors.slice(-ERRORS_SHOWN);
  const items = shown.map((error) => el("details", { className: "error-item" },
    el("summary", {}, el("strong", {}, error.node), ` raised in ${error.phase} on Worker ${error.worker || "?"}`),
    el("pre", {}, error.traceback || "(no traceback)")));
  const earlier = model.errors.length - shown.length;
  if (earlier) items.unshift(el("p", { className: "muted" }, `${earlier} earlier errors are in the session's chimerapy.log.`));
  $("errors").replaceChildren(...(items.length ? items : [el("p", { className: "muted" }, "No errors.")]));
}

// -- previews: updated in place as they arrive ----------------------------------------------------

function isLevel(record) { return /dbfs/i.test(record); }

function reading(record, value) {
  if (isLevel(record)) return `${number(value)} dBFS`;
  if (/time/i.test(record) && value > 1e9) { // seconds since the epoch: a clock time
    return clockTime(value);
  }
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
}

function previewCard(key, node, record, value) {
  const caption = el("figcaption", {}, el("strong", {}, node), ` · ${record}`);
  if (value.jpeg !== undefined) {
    return el("figure", { className: "preview image", "data-key": key },
      el("img", { alt: `${node} ${record}`, width: value.width, height: value.height }), caption);
  }
  if (isLevel(record)) {
    return el("figure", { className: "preview level", "data-key": key },
      el("meter", { min: -90, max: 0, low: -40, high: -6, optimum: -20 }), el("div", { className: "reading" }), caption);
  }
  return el("figure", { className: "preview value", "data-key": key }, el("div", { className: "reading" }), caption);
}

function showPreview(node, records) {
  const area = $("previews");
  area.querySelector("p.muted")?.remove();
  for (const [record, value] of Object.entries(records)) {
    const key = `${node}/${record}`;
    let card = area.querySelector(`figure[data-key="${CSS.escape(key)}"]`);
    if (!card) {
      card = previewCard(key, node, record, value);
      area.append(card);
    }
    if (value.jpeg !== undefined) {
      card.querySelector("img").src = `data:image/jpeg;base64,${value.jpeg}`;
    } else {
      card.querySelector(".reading").textContent = reading(record, value.value);
      const meter = card.querySelector("meter");
      if (meter) meter.value = Math.max(-90, Math.min(0, value.value));
    }
  }
}

function renderPreviews() {
  $("previews").replaceChildren(el("p", { className: "muted" }, "No preview yet: previews appear while the pipeline runs."));
  for (const [node, records] of Object.entries(model.previews)) showPreview(node, records);
}

// -- the archive ----------------------------------------------------------------------------------

const MEDIA = { video: /\.(mp4|webm|m4v|mov|mkv)$/i, audio: /\.(wav|ogg|mp3|flac|m4a)$/i, image: /\.(png|jpe?g|gif|webp)$/i };

function fileRow(session, file) {
  const url = `/api/sessions/${encodeURIComponent(session)}/files/${file.path.split("/").map(encodeURIComponent).join("/")}`;
  let media = null;
  if (MEDIA.video.test(file.path)) media = el("video", { src: url, controls: true, preload: "metadata" });
  else if (MEDIA.audio.test(file.path)) media = el("audio", { src: url, controls: true, preload: "none" });
  else if (MEDIA.image.test(file.path)) media = el("img", { src: url, alt: file.path, className: "still", loading: "lazy" });
  return el("li", { className: "file" },
    el("a", { href: url, target: "_blank", rel: "noopener" }, file.path), el("span", { className: "muted" }, ` ${bytes(file.size)}`),
    media ? el("div", {}, media) : null);
}

async function openSession(details, session) {
  if (details.dataset.loaded) return;
  details.dataset.loaded = "yes";
  const list = details.querySelector("ul");
  try {
    const { files } = await api("GET", `/api/sessions/${encodeURIComponent(session)}/files`);
    list.replaceChildren(...files.map((file) => fileRow(session, file)));
  } catch (error) {
    list.replaceChildren(el("li", { className: "error" }, error.message));
    delete details.dataset.loaded;
  }
}

function sessionItem(session) {
  const duration = session.start_time && session.stop_time ? ` · ${number(session.stop_time - session.start_time)} s` : "";
  const recording = session.id === model.session && RUNNING.includes(model.state);
  const status = recording ? "recording"
    : session.complete ? "complete" : (Object.keys(session.collected).length ? "incomplete" : "not collected");
  const details = el("details", { className: "session", "data-session": session.id },
    el("summary", {},
      el("code", {}, session.id), " ",
      el("span", { className: "badge", "data-state": status }, status), " ",
      el("span", { className: "muted" }, `${dateTime(session.start_time || session.created)}${duration} · Workers: ${session.workers.join(", ") || "–"} · nodes: ${session.nodes.join(", ") || "–"}`)),
    el("ul", { className: "files" }, el("li", { className: "muted" }, "Loading…")));
  details.addEventListener("toggle", () => { if (details.open) openSession(details, session.id); });
  return details;
}

let archiveRequest = null;
let archiveAgain = false;
async function refreshArchive() {
  if (archiveRequest) { // one request at a time; one more once it answered
    archiveAgain = true;
    return archiveRequest;
  }
  archiveRequest = (async () => {
    try {
      const { logdir, sessions } = await api("GET", "/api/sessions");
      $("logdir").textContent = logdir;
      const open = new Set([...document.querySelectorAll("#archive details[open]")].map((d) => d.dataset.session));
      const items = sessions.map(sessionItem);
      $("archive").replaceChildren(...(items.length ? items : [el("p", { className: "muted" }, "No session yet.")]));
      for (const item of items) if (open.has(item.dataset.session)) item.open = true;
    } catch (error) {
      notify(error.message, "error");
    } finally {
      archiveRequest = null;
      if (archiveAgain) {
        archiveAgain = false;
        refreshArchive();
      }
    }
  })();
  return archiveRequest;
}

// -- actions and the events socket -----------------------------------------------------------------

async function act(button, path, done) {
  button.disabled = true;
  notify(`${button.textContent}…`);
  try {
    done(await api("POST", path));
  } catch (error) {
    notify(error.message, "error");
  } finally {
    render();
  }
}

function describeCollect(report) {
  const workers = Object.entries(report || {});
  const files = workers.reduce((sum, [, item]) => sum + item.files, 0);
  const incomplete = workers.filter(([, item]) => !item.complete).map(([name, item]) => `${name}: ${item.error || `missing ${item.missing.join(", ")}`}`);
  return incomplete.length
    ? [`Collected ${files} files; incomplete: ${incomplete.join("; ")}`, "error"]
    : [`Collected ${files} files from ${workers.length} Worker(s).`, "info"];
}

let backoff = 500;
function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`);
  const connection = $("connection");
  socket.addEventListener("open", () => {
    backoff = 500;
    connection.dataset.live = "true";
    connection.textContent = "live";
  });
  socket.addEventListener("message", (message) => handle(JSON.parse(message.data)));
  socket.addEventListener("close", () => {
    connection.dataset.live = "false";
    connection.textContent = "reconnecting…";
    setTimeout(() => { refreshState().then(connect); }, backoff);
    backoff = Math.min(backoff * 2, 5000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("start").addEventListener("click", (event) => act(event.currentTarget, "/api/start", () => notify("Started.")));
  const collected = (reply) => {
    notify(...describeCollect(reply.collected));
    refreshState(); // the clock offsets measured over the session
    refreshArchive();
  };
  $("stop").addEventListener("click", (event) => act(event.currentTarget, "/api/stop", collected));
  $("collect").addEventListener("click", (event) => act(event.currentTarget, "/api/collect", collected));
  $("refresh-archive").addEventListener("click", refreshArchive);
  refreshArchive();
  connect();
});
