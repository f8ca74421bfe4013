"use strict";
// The ChimeraPy dashboard: a view of GET /api/state kept live by the WebSocket /api/events.
// Plain DOM, no framework; every text from the cluster is set with textContent, never as HTML.
// Plots come from live.js (uPlot), the graph's layout from dagre (both in assets/vendor/).

const LOG_LINES = 200;
const ERRORS_SHOWN = 20;
const RUNNING = ["running", "stepping"];
const LIVE = [...RUNNING, "preview"]; // the nodes run (a preview saves nothing)

const model = {
  state: null, session: null, workers: {}, lost: [], nodes: {}, graph: { nodes: [], edges: [] },
  errors: [], clock: {}, previews: {},
};
const log = []; // {time, level, worker, node, message}
const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

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

// A call of the REST API; a refusal throws an Error carrying the answer's ``problems`` (if any).
async function api(method, path, body = undefined) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    location.href = "/login";
    throw new Error("the dashboard needs the cluster token");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(answer.error || `${method} ${path}: ${response.status} ${response.statusText}`);
    error.problems = answer.problems || [];
    throw error;
  }
  return answer;
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
  showLog([{ time: clockTime(record.time || Date.now() / 1000), level: record.level || "INFO", worker: record.worker || "",
    node: record.node || "", message: record.message || "" }]);
}

// A line of chimerapy.log: "HH:MM:SS.mmm LEVEL   [worker/node] message"; other lines continue the one before.
const LOG_LINE = /^(\d\d:\d\d:\d\d\.\d{3}) (\w+)\s+\[([^\]]*)\] ?(.*)$/;
function parseLogTail(lines) {
  const entries = [];
  for (const line of lines) {
    const match = LOG_LINE.exec(line);
    if (match) {
      const [worker, node] = match[3].split("/");
      entries.push({ time: match[1], level: match[2], worker: worker || "", node: node || "", message: match[4] });
    } else if (entries.length) {
      entries[entries.length - 1].message += `\n${line}`;
    } else {
      entries.push({ time: "", level: "INFO", worker: "", node: "", message: line });
    }
  }
  return entries;
}

function logShown(entry) {
  const node = $("log-node").value, level = $("log-level").value;
  return (!node || entry.node === node) && LEVELS.indexOf(entry.level) >= LEVELS.indexOf(level);
}

function logLine(entry) {
  const source = [entry.worker, entry.node].filter(Boolean).join("/");
  const [first, ...rest] = entry.message.split("\n");
  const head = `${entry.time} ${entry.level.padEnd(7)} [${source}] ${first}`;
  const attributes = { className: "log-line", "data-level": entry.level, "data-node": entry.node };
  return rest.length // a traceback: folded under its first line
    ? el("details", attributes, el("summary", {}, head), el("pre", {}, rest.join("\n")))
    : el("div", attributes, head);
}

function showLog(entries) {
  log.push(...entries);
  if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  const area = $("log");
  const atBottom = area.scrollTop + area.clientHeight >= area.scrollHeight - 4;
  for (const entry of entries) if (entry.node && !logNodes.has(entry.node)) addLogNode(entry.node);
  area.append(...entries.filter(logShown).map(logLine));
  while (area.childElementCount > LOG_LINES) area.firstElementChild.remove();
  if (atBottom) area.scrollTop = area.scrollHeight;
}

const logNodes = new Set();
function addLogNode(name) {
  logNodes.add(name);
  const select = $("log-node");
  const options = [...select.options].slice(1).map((option) => option.value);
  const before = options.find((other) => other > name);
  select.insertBefore(el("option", { value: name }, name), before === undefined ? null : select.querySelector(`option[value="${CSS.escape(before)}"]`));
}

function refilterLog() {
  $("log").replaceChildren(...log.filter(logShown).map(logLine));
}

function handle(event) {
  switch (event.type) {
    case "snapshot":
      applyState(event);
      model.previews = event.previews || {};
      LiveView.reset();
      refreshMethods();
      if (firstSnapshot) $("editor").open = !model.graph.nodes.length; // a running pipeline: its live view first
      firstSnapshot = false;
      log.length = 0;
      $("log").replaceChildren();
      showLog(parseLogTail(event.log_tail || []));
      for (const name of Object.keys(model.nodes)) if (!logNodes.has(name)) addLogNode(name);
      render();
      renderPreviews();
      refreshArchive();
      Editor.workersChanged();
      break;
    case "state":
      if (event.session && event.session !== model.session) LiveView.reset(); // a new session's plots
      model.state = event.state;
      model.session = event.session;
      render();
      if (event.state === "committed") { refreshState(); refreshMethods(); }
      if (!LIVE.includes(event.state)) refreshArchive();
      if (event.state === "preview") notify("Preview: the nodes run and nothing is saved. Record saves from then on.");
      break;
    case "workers":
      refreshState().then(() => Editor.workersChanged());
      break;
    case "node_state":
      model.nodes[event.node] = { ...(model.nodes[event.node] || {}), state: event.state };
      scheduleRender();
      break;
    case "stats":
      for (const [name, stats] of Object.entries(event.nodes)) {
        model.nodes[name] = { ...(model.nodes[name] || {}), stats };
      }
      LiveView.stats(event);
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
      LiveView.preview(event.node, event.records, event.time);
      break;
    case "collect":
      notify(`Collecting from ${event.worker}: ${event.path} (${bytes(event.done)} of ${bytes(event.total)})`);
      break;
    case "collected": // also when another client, a script or Ctrl-C stopped the run
      notify(...describeCollect(event.report));
      refreshArchive();
      break;
    case "dropped":
      addLog({ time: event.time, level: "WARNING", message: `the dashboard fell behind: ${event.count} events skipped` });
      refreshState();
      break;
    default:
      break;
  }
}

let firstSnapshot = true;
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
  const committed = model.graph.nodes.length > 0;
  $("preview").disabled = !(committed && ["committed", "stopped"].includes(model.state));
  $("start").disabled = !(committed && ["committed", "preview", "stopped"].includes(model.state));
  $("stop").disabled = ![...LIVE, "committed"].includes(model.state);
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

// While a node previews: how many of its save_* calls were counted and not written.
function unsavedNote(stats) {
  if (stats.recording !== false) return null;
  const calls = Object.values(stats.preview_saves || {}).reduce((sum, record) => sum + record.calls, 0);
  return el("div", { className: "muted unsaved", "data-calls": calls, title: "save_* calls counted during the preview; nothing is written" },
    `${calls} saves not written`);
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
      el("td", {}, el("span", { className: "badge", "data-state": node.state || "" }, node.state || "–"), unsavedNote(stats)),
      el("td", { className: "num" }, stats.rate === undefined ? "–" : `${number(stats.rate)}/s`),
      el("td", { className: "num" }, stats.steps ?? "–"),
      el("td", { className: "num" }, stats.outputs ?? "–"),
      el("td", {}, inputLines(stats.inputs)),
      el("td", { className: count ? "num bad" : "num" }, count));
  });
  $("nodes").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, className: "muted" }, "No graph committed."))]));
}

// The graph laid out by dagre: nodes grouped in a box per Worker, edges left to right.
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
  const width = 150, height = 34, labelHeight = 18;
  const layout = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  layout.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 56, marginx: 10, marginy: 10 });
  layout.setDefaultEdgeLabel(() => ({}));
  const workerOf = (name) => (model.nodes[name] || {}).worker;
  for (const worker of new Set(nodes.map((node) => workerOf(node.name)).filter(Boolean))) {
    layout.setNode(`worker:${worker}`, { worker });
  }
  for (const node of nodes) {
    layout.setNode(node.name, { width, height });
    if (workerOf(node.name)) layout.setParent(node.name, `worker:${workerOf(node.name)}`);
  }
  for (const edge of edges) layout.setEdge(edge.source, edge.target);
  dagre.layout(layout);
  // room for each Worker box's label: everything at or below a box's top moves down a label's height
  const workers = layout.nodes().filter((id) => id.startsWith("worker:"));
  const tops = workers.map((id) => layout.node(id).y - layout.node(id).height / 2);
  const down = (y) => labelHeight * tops.filter((top) => top <= y + 0.5).length;
  for (const id of layout.nodes()) layout.node(id).y += down(layout.node(id).y - (layout.node(id).height || 0) / 2);
  for (const link of layout.edges()) for (const point of layout.edge(link).points) point.y += down(point.y);
  const size = layout.graph();
  const maxX = Math.ceil(size.width), maxY = Math.ceil(size.height + labelHeight * workers.length);
  area.setAttribute("viewBox", `0 0 ${maxX} ${maxY}`);
  area.style.maxWidth = `${maxX}px`; // never drawn larger than life
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  area.append(defs);
  for (const id of workers) {
    const box = layout.node(id);
    const group = svg("g", { class: "worker-group", "data-worker": box.worker });
    const top = box.y - box.height / 2 - labelHeight;
    group.append(svg("rect", { x: box.x - box.width / 2, y: top, width: box.width, height: box.height + labelHeight, rx: 8 }));
    const label = svg("text", { x: box.x - box.width / 2 + 8, y: top + 13 });
    label.textContent = `Worker ${box.worker}`;
    group.append(label);
    area.append(group);
  }
  for (const edge of edges) {
    const route = layout.edge(edge.source, edge.target);
    if (!route) continue;
    const points = route.points;
    const line = svg("path", {
      d: points.map((point, index) => `${index ? "L" : "M"} ${point.x.toFixed(1)} ${point.y.toFixed(1)}`).join(" "),
      class: `edge${edge.follow ? " follow" : ""}${edge.latest_only ? " latest" : ""}`, "marker-end": "url(#arrow)",
    });
    const title = svg("title");
    title.textContent = `${edge.source} → ${edge.target}${edge.follow ? " (followed)" : ""}${edge.latest_only ? " (latest only)" : ""}`;
    line.append(title);
    area.append(line);
  }
  for (const node of nodes) {
    const box = layout.node(node.name);
    const x = box.x - width / 2, y = box.y - height / 2;
    const state = (model.nodes[node.name] || {}).state || "";
    const group = svg("g", { class: "graph-node", "data-node": node.name, "data-state": state });
    group.append(svg("rect", { x, y, width, height, rx: 6 }));
    const label = svg("text", { x: x + width / 2, y: y + height / 2 + 4, "text-anchor": "middle" });
    label.textContent = node.name.length > 20 ? `${node.name.slice(0, 19)}…` : node.name;
    const title = svg("title");
    title.textContent = `${node.name} (${node.class}) on ${workerOf(node.name) || "?"}: ${state || "?"}`;
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

// Image outputs as thumbnails; numbers go to the plots or the static values (live.js).
function showPreview(node, records) {
  const area = $("previews");
  for (const [record, value] of Object.entries(records)) {
    if (value.jpeg === undefined) continue;
    area.querySelector("p.muted")?.remove();
    const key = `${node}/${record}`;
    let card = area.querySelector(`figure[data-key="${CSS.escape(key)}"]`);
    if (!card) {
      card = el("figure", { className: "preview image", "data-key": key },
        el("img", { alt: `${node} ${record}`, width: value.width, height: value.height }),
        el("figcaption", {}, el("strong", {}, node), ` · ${record}`));
      area.append(card);
    }
    card.querySelector("img").src = `data:image/jpeg;base64,${value.jpeg}`;
  }
}

function renderPreviews() {
  $("previews").replaceChildren(el("p", { className: "muted" }, "No image yet: thumbnails appear while the pipeline runs."));
  for (const [node, records] of Object.entries(model.previews)) {
    showPreview(node, records);
    LiveView.preview(node, records);
  }
}

// -- registered methods: a form per method, called while the pipeline runs -----------------------

let methodsShown = "";
async function refreshMethods() {
  try {
    const { methods } = await api("GET", "/api/methods");
    const key = JSON.stringify(methods);
    if (key === methodsShown) return; // forms being filled in stay as they are
    methodsShown = key;
    const forms = [];
    for (const [node, list] of Object.entries(methods)) {
      for (const method of list) forms.push(methodForm(node, method));
    }
    $("methods").replaceChildren(...forms);
    $("methods-panel").hidden = !forms.length;
  } catch (error) {
    notify(error.message, "error");
  }
}

function methodForm(node, method) {
  const inputs = method.parameters.map((parameter) => el("label", {},
    `${parameter.name} `, el("input", { name: parameter.name, type: "text", spellcheck: "false", "data-annotation": parameter.annotation,
      placeholder: parameter.default === null ? parameter.annotation : `default ${parameter.default}` })));
  const result = el("output", { className: "method-result" });
  const form = el("form", { className: "method-form", "data-node": node, "data-method": method.name },
    el("strong", {}, `${node}.${method.name}`), el("span", { className: "muted" }, method.doc ? ` ${method.doc}` : ""),
    el("div", { className: "editor-bar" }, ...inputs, el("button", { type: "submit", className: "small" }, "Call"), result));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = {};
    for (const input of form.querySelectorAll("input")) {
      const value = Editor.parseOption(input.value, input.dataset.annotation);
      if (value !== undefined) params[input.name] = value;
    }
    result.textContent = "…";
    try {
      const answer = await api("POST", `/api/nodes/${encodeURIComponent(node)}/methods/${encodeURIComponent(method.name)}`, params);
      result.textContent = `→ ${JSON.stringify(answer.result)}`;
      result.dataset.ok = "true";
    } catch (error) {
      result.textContent = error.message;
      result.dataset.ok = "false";
    }
  });
  return form;
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
  const live = session.id === model.session && LIVE.includes(model.state);
  const status = live ? (model.state === "preview" ? "preview" : "recording")
    : session.recorded === false ? "preview only"
    : session.complete ? "complete" : (Object.keys(session.collected).length ? "incomplete" : "not collected");
  const review = el("button", { type: "button", className: "small review-open", disabled: live }, "Review");
  review.addEventListener("click", (event) => { event.preventDefault(); Review.open(session.id); });
  const details = el("details", { className: "session", "data-session": session.id },
    el("summary", {},
      session.title ? el("strong", { className: "session-title" }, `${session.title} `) : null,
      el("code", {}, session.id), " ",
      el("span", { className: "badge", "data-state": status }, status), " ",
      el("span", { className: "muted" }, `${dateTime(session.start_time || session.created)}${duration} · Workers: ${session.workers.join(", ") || "–"} · nodes: ${session.nodes.join(", ") || "–"}`),
      review),
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
      Editor.sessionsChanged(sessions);
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
  $("preview").addEventListener("click", (event) => act(event.currentTarget, "/api/preview", () => {}));
  $("start").addEventListener("click", (event) => act(event.currentTarget, "/api/record", () => notify("Recording.")));
  const collected = (reply) => {
    notify(...describeCollect(reply.collected));
    refreshState(); // the clock offsets measured over the session
    refreshArchive();
  };
  $("stop").addEventListener("click", (event) => act(event.currentTarget, "/api/stop", collected));
  $("collect").addEventListener("click", (event) => act(event.currentTarget, "/api/collect", collected));
  $("refresh-archive").addEventListener("click", refreshArchive);
  for (const level of LEVELS) $("log-level").append(el("option", { value: level, selected: level === "INFO" }, level));
  $("log-node").addEventListener("change", refilterLog);
  $("log-level").addEventListener("change", refilterLog);
  LiveView.setup();
  Editor.setup();
  Review.setup();
  refreshArchive();
  connect();
});
