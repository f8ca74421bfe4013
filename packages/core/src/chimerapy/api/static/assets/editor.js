"use strict";
// The pipeline editor: nodes from the registry, their options, edges, placement on Workers; checked
// as you type by POST /api/validate (the checks of `chimerapy run`), saved with PUT /api/pipelines/NAME
// as a file the CLI runs, opened from a saved file, a local file or a past session, committed with
// POST /api/pipeline. Uses el, api, notify, $ and model from app.js.

const Editor = (() => {
  let registry = []; // GET /api/registry's nodes
  const draft = { name: "pipeline", nodes: [], edges: [] }; // nodes: {name, registry, params, worker}
  let checkTimer = null;
  let checkNumber = 0;

  const info = (name) => registry.find((node) => node.name === name);
  const connected = () => Object.keys(model.workers).sort();

  // -- option values: typed text -> JSON values ----------------------------------------------------

  function jsonKinds(annotation) {
    const kinds = new Set();
    for (const part of annotation.split("|").map((type) => type.trim())) {
      if (part === "int") kinds.add("integer");
      else if (part === "float") { kinds.add("integer"); kinds.add("number"); }
      else if (part === "bool") kinds.add("boolean");
      else if (part === "str") kinds.add("string");
      else if (part === "None") kinds.add("null");
      else if (/^(Sequence|list|tuple)\b/.test(part)) kinds.add("array");
      else if (/^(dict|Mapping)\b/.test(part)) kinds.add("object");
      else kinds.add("any");
    }
    return kinds;
  }

  function kindOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (Number.isInteger(value)) return "integer";
    return typeof value === "number" ? "number" : typeof value;
  }

  // The text as the JSON value it reads as when the option takes that kind, else as a string (the
  // server then names what the option takes); "" is the default (the option is left out).
  function parseOption(text, annotation) {
    if (text.trim() === "") return undefined;
    const kinds = annotation ? jsonKinds(annotation) : new Set(["any"]);
    try {
      const value = JSON.parse(text);
      if (kinds.has("any") || kinds.has(kindOf(value)) || (kindOf(value) === "integer" && kinds.has("number"))) return value;
    } catch (error) { /* not JSON: a string */ }
    if (kinds.has("null") && /^none$/i.test(text.trim())) return null;
    return text;
  }

  const showOption = (value) => (value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value));

  // -- the draft as a pipeline file, and back ------------------------------------------------------

  function toPipeline() {
    const mapping = {};
    for (const node of draft.nodes) if (node.worker) (mapping[node.worker] ||= []).push(node.name);
    return {
      name: draft.name || "pipeline",
      workers: Object.keys(mapping).map((name) => ({ name })),
      nodes: draft.nodes.map((node) => ({ name: node.name, registry: node.registry, params: node.params })),
      edges: draft.edges.map((edge) => {
        const out = { source: edge.source, target: edge.target, follow: edge.follow };
        if (edge.latest_only !== null) out.latest_only = edge.latest_only;
        return out;
      }),
      mapping,
    };
  }

  function fromPipeline(pipeline) {
    const placed = {};
    for (const [worker, names] of Object.entries(pipeline.mapping || {})) for (const name of names) placed[name] = worker;
    draft.name = pipeline.name || "pipeline";
    draft.nodes = (pipeline.nodes || []).map((node) => ({
      name: node.name, registry: node.registry, params: { ...(node.params || {}) }, worker: placed[node.name] || "" }));
    draft.edges = (pipeline.edges || []).map((edge) => ({
      source: edge.source, target: edge.target, follow: Boolean(edge.follow), latest_only: edge.latest_only ?? null }));
    render();
    scheduleCheck();
  }

  // -- rendering -----------------------------------------------------------------------------------

  function registryItem(node) {
    const options = node.parameters.map((parameter) => el("tr", {},
      el("td", {}, el("code", {}, parameter.name)), el("td", {}, parameter.annotation || "any"),
      el("td", {}, parameter.required ? "required" : parameter.default), el("td", {}, parameter.description || "")));
    return el("li", { "data-registry": node.name, className: node.broken ? "broken" : "" },
      el("div", { className: "registry-head" },
        el("button", { type: "button", className: "small add", disabled: node.broken, title: `add a ${node.name} node`,
          onclick: () => addNode(node.name) }, "Add"),
        el("strong", {}, node.name), " ", el("span", { className: "badge", "data-state": node.kind }, node.kind)),
      el("div", { className: "muted" }, node.broken ? `unusable: ${node.error}` : node.summary),
      el("details", {}, el("summary", {}, "documentation and options"),
        el("p", { className: "doc" }, node.doc || node.summary),
        options.length ? el("table", { className: "options" },
          el("thead", {}, el("tr", {}, el("th", {}, "option"), el("th", {}, "type"), el("th", {}, "default"), el("th", {}, "description"))),
          el("tbody", {}, options)) : el("p", { className: "muted" }, "No options.")));
  }

  function renderRegistry() {
    const filter = $("registry-filter").value.trim().toLowerCase();
    const shown = registry.filter((node) => !filter || `${node.name} ${node.summary}`.toLowerCase().includes(filter));
    $("registry").replaceChildren(...shown.map(registryItem));
  }

  function optionRow(node, index, parameter) {
    const annotation = parameter.annotation || "";
    const id = `option-${index}-${parameter.name}`;
    const input = el("input", {
      id, type: "text", value: showOption(node.params[parameter.name]), spellcheck: "false",
      placeholder: parameter.required ? "required" : `default ${parameter.default}`,
      "aria-describedby": `${id}-help`,
    });
    input.addEventListener("input", () => {
      const value = parseOption(input.value, annotation);
      if (value === undefined) delete node.params[parameter.name];
      else node.params[parameter.name] = value;
      scheduleCheck();
    });
    return el("div", { className: "option", "data-option": parameter.name },
      el("label", { for: id }, el("code", {}, parameter.name), " ", el("span", { className: "muted" }, annotation || "any")),
      input,
      el("div", { className: "option-help muted", id: `${id}-help` }, parameter.description || ""),
      el("div", { className: "option-error error", role: "alert" }));
  }

  function nodeCard(node, index) {
    const described = info(node.registry);
    const name = el("input", { type: "text", value: node.name, className: "node-name", "aria-label": "node name", spellcheck: "false" });
    name.addEventListener("change", () => renameNode(node, name.value.trim()));
    const worker = el("select", { className: "node-worker", "aria-label": `Worker of ${node.name}` },
      el("option", { value: "" }, "(no Worker)"),
      ...[...new Set([...connected(), node.worker].filter(Boolean))].map((w) => el("option", { value: w, selected: w === node.worker }, w)));
    worker.addEventListener("change", () => { node.worker = worker.value; scheduleCheck(); });
    const known = new Set((described?.parameters || []).map((p) => p.name));
    const unknown = Object.keys(node.params).filter((key) => !known.has(key)); // a former name, or a typo
    return el("div", { className: "editor-node", "data-name": node.name },
      el("div", { className: "node-head" }, name, el("code", {}, node.registry), " on ", worker,
        el("button", { type: "button", className: "small remove", onclick: () => removeNode(node) }, "Remove")),
      el("div", { className: "node-error error", role: "alert" }),
      el("div", { className: "options" }, ...(described ? described.parameters.map((p) => optionRow(node, index, p)) : []),
        ...unknown.map((key) => optionRow(node, index, { name: key, annotation: "", required: false, default: "", description: "not an option of this node" }))));
  }

  function renderEdges() {
    const names = draft.nodes.map((node) => node.name);
    for (const id of ["edge-source", "edge-target"]) {
      const select = $(id);
      const before = select.value;
      select.replaceChildren(...names.map((name) => el("option", { value: name, selected: name === before }, name)));
    }
    $("edge-list").replaceChildren(...draft.edges.map((edge, index) => el("li", { "data-edge": `${edge.source}->${edge.target}` },
      `${edge.source} → ${edge.target}`, edge.follow ? " (followed)" : "",
      edge.latest_only === null ? "" : edge.latest_only ? " (latest only)" : " (every chunk)",
      el("button", { type: "button", className: "small remove", onclick: () => { draft.edges.splice(index, 1); renderEdges(); scheduleCheck(); } }, "Remove"),
      el("span", { className: "edge-error error", "data-index": index }))));
  }

  function render() {
    $("pipeline-name").value = draft.name;
    $("editor-nodes").replaceChildren(...(draft.nodes.length ? draft.nodes.map(nodeCard)
      : [el("p", { className: "muted" }, "Add nodes from the registry on the left.")]));
    renderEdges();
  }

  // -- editing -------------------------------------------------------------------------------------

  function uniqueName(base) {
    let name = base, count = 1;
    while (draft.nodes.some((node) => node.name === name)) { count += 1; name = `${base}${count}`; }
    return name;
  }

  function addNode(registryName) {
    const workers = connected();
    draft.nodes.push({ name: uniqueName(registryName.split(".").pop()), registry: registryName, params: {}, worker: workers[0] || "" });
    render();
    scheduleCheck();
  }

  function removeNode(node) {
    draft.nodes = draft.nodes.filter((other) => other !== node);
    draft.edges = draft.edges.filter((edge) => edge.source !== node.name && edge.target !== node.name);
    render();
    scheduleCheck();
  }

  function renameNode(node, name) {
    if (!name || name === node.name) return;
    for (const edge of draft.edges) {
      if (edge.source === node.name) edge.source = name;
      if (edge.target === node.name) edge.target = name;
    }
    node.name = name;
    render();
    scheduleCheck();
  }

  function addEdge() {
    const source = $("edge-source").value, target = $("edge-target").value;
    if (!source || !target) return;
    const latest = $("edge-latest").value;
    draft.edges.push({ source, target, follow: $("edge-follow").checked, latest_only: latest === "" ? null : latest === "yes" });
    renderEdges();
    scheduleCheck();
  }

  // -- checking, as you type -----------------------------------------------------------------------

  function scheduleCheck() {
    clearTimeout(checkTimer);
    $("editor-status").textContent = "checking…";
    $("editor-status").dataset.state = "checking";
    checkTimer = setTimeout(check, 350);
  }

  function showProblems(problems) {
    for (const area of document.querySelectorAll("#editor-panel .option-error, #editor-panel .node-error, #editor-panel .edge-error")) area.textContent = "";
    const general = [];
    for (const { path, message } of problems) {
      const option = /^nodes\[(\d+)\]\.params\.(\w+)$/.exec(path);
      const node = /^nodes\[(\d+)\]/.exec(path);
      const edge = /^edges\[(\d+)\]/.exec(path);
      const card = node && document.querySelectorAll("#editor-nodes .editor-node")[Number(node[1])];
      let target = null;
      if (option && card) target = card.querySelector(`.option[data-option="${CSS.escape(option[2])}"] .option-error`);
      else if (card) target = card.querySelector(".node-error");
      else if (edge) target = document.querySelector(`#edge-list .edge-error[data-index="${edge[1]}"]`);
      if (target) target.textContent = target.textContent ? `${target.textContent}; ${message}` : message;
      general.push(el("li", { "data-path": path }, el("code", {}, path || "(pipeline)"), ` ${message}`));
    }
    $("editor-problems").replaceChildren(...general);
  }

  async function check() {
    const number = ++checkNumber;
    const status = $("editor-status");
    if (!draft.nodes.length) {
      showProblems([]);
      status.textContent = "empty";
      status.dataset.state = "";
      return false;
    }
    try {
      const answer = await api("POST", "/api/validate", toPipeline());
      if (number !== checkNumber) return false; // a newer check is under way
      if (!answer.ok) {
        showProblems(answer.problems);
        status.textContent = `${answer.problems.length} problem(s)`;
        status.dataset.state = "invalid";
        return false;
      }
      showProblems(answer.warnings);
      status.textContent = `valid: ${answer.nodes.length} nodes, ${answer.edges} edges`;
      status.dataset.state = "valid";
      return true;
    } catch (error) {
      if (number !== checkNumber) return false;
      showProblems(error.problems.length ? error.problems : [{ path: "", message: error.message }]);
      status.textContent = `${error.problems.length || 1} problem(s)`;
      status.dataset.state = "invalid";
      return false;
    }
  }

  // -- saving, opening, committing -----------------------------------------------------------------

  async function refreshSaved() {
    try {
      const { pipelines } = await api("GET", "/api/pipelines");
      $("saved-pipelines").replaceChildren(el("option", { value: "" }, "saved pipelines…"),
        ...pipelines.map((saved) => el("option", { value: saved.name }, saved.name)));
    } catch (error) {
      notify(error.message, "error");
    }
  }

  async function save() {
    draft.name = $("pipeline-name").value.trim() || "pipeline";
    try {
      const answer = await api("PUT", `/api/pipelines/${encodeURIComponent(draft.name)}`, toPipeline());
      notify(`Saved as ${answer.path}: run it with chimerapy run ${answer.path}`);
      refreshSaved();
    } catch (error) {
      if (error.problems.length) showProblems(error.problems);
      notify(error.message, "error");
    }
  }

  async function commit() {
    try {
      const answer = await api("POST", "/api/pipeline", toPipeline());
      notify(`Committed: session ${answer.session}; press Start to run it.`);
      refreshState();
    } catch (error) {
      if (error.problems.length) showProblems(error.problems);
      notify(error.message, "error");
    }
  }

  async function open(path) {
    try {
      fromPipeline(await api("GET", path));
    } catch (error) {
      notify(error.message, "error");
    }
  }

  function openFile(file) {
    const reader = new FileReader();
    reader.onload = () => {
      try {
        fromPipeline(JSON.parse(reader.result));
      } catch (error) {
        notify(`${file.name} is not a pipeline file: ${error.message}`, "error");
      }
    };
    reader.readAsText(file);
  }

  // -- wiring --------------------------------------------------------------------------------------

  function workersChanged() {
    if (!document.getElementById("editor-nodes")) return;
    for (const node of draft.nodes) if (!node.worker && connected().length) node.worker = connected()[0];
    render();
    if (draft.nodes.length) scheduleCheck();
  }

  function sessionsChanged(sessions) {
    const select = document.getElementById("session-pipelines");
    if (!select) return;
    select.replaceChildren(el("option", { value: "" }, "past sessions…"), ...sessions.map((session) => el("option", { value: session.id }, session.id)));
  }

  async function setup() {
    $("registry-filter").addEventListener("input", renderRegistry);
    $("pipeline-name").addEventListener("input", (event) => { draft.name = event.target.value.trim(); });
    $("add-edge").addEventListener("click", addEdge);
    $("validate-pipeline").addEventListener("click", check);
    $("save-pipeline").addEventListener("click", save);
    $("commit-pipeline").addEventListener("click", commit);
    $("load-saved").addEventListener("click", () => { const name = $("saved-pipelines").value; if (name) open(`/api/pipelines/${encodeURIComponent(name)}`); });
    $("load-session").addEventListener("click", () => { const id = $("session-pipelines").value; if (id) open(`/api/sessions/${encodeURIComponent(id)}/pipeline`); });
    $("load-file").addEventListener("change", (event) => { if (event.target.files[0]) openFile(event.target.files[0]); });
    render();
    refreshSaved();
    try {
      registry = (await api("GET", "/api/registry")).nodes;
      renderRegistry();
      render();
    } catch (error) {
      notify(error.message, "error");
    }
  }

  return { setup, workersChanged, sessionsChanged, toPipeline, parseOption };
})();
