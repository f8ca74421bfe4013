"use strict";
// The live view's plots: time series over a scrolling window, drawn with uPlot (vendor/).
// Each plot is a <figure data-chart=ID> with data-series (its series' names), data-points (the
// samples kept) and data-last (the latest value of each series, as JSON) for tests and tools.
// Values that never changed are not plotted: they are listed once under "Static values".

const LiveView = (() => {
  const COLORS = ["#2456c9", "#d1495b", "#1d7f46", "#a86400", "#7b3fb5", "#0f8b8d", "#c44e9c", "#5d6470", "#8c6d1f", "#3a86ff"];
  const windowChoices = [60, 300, 900];
  let windowSeconds = 300;
  const charts = new Map(); // id -> chart
  const numeric = new Map(); // "node/record" -> {first, changed}
  let container = null;
  let staticList = null;

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  }

  class Chart {
    constructor(id, title, unit, order) {
      this.id = id;
      this.title = title;
      this.unit = unit;
      this.names = [];
      this.times = [];
      this.columns = [];
      this.plot = null;
      this.dirty = false;
      this.figure = element("figure", { class: "chart", "data-chart": id, "data-points": "0", "data-series": "", "data-last": "{}" },
        element("figcaption", {}, title + (unit ? ` (${unit})` : "")), element("div", { class: "plot" }));
      this.figure.style.order = String(order);
      container.append(this.figure);
      container.querySelector("p.muted")?.remove();
    }

    add(time, values) {
      let added = false;
      for (const name of Object.keys(values)) {
        if (!this.names.includes(name)) {
          this.names.push(name);
          this.columns.push(this.times.map(() => null));
          added = true;
        }
      }
      this.times.push(time);
      this.names.forEach((name, index) => this.columns[index].push(name in values ? values[name] : null));
      const start = time - windowSeconds;
      let old = 0;
      while (old < this.times.length && this.times[old] < start) old += 1;
      if (old) {
        this.times.splice(0, old);
        for (const column of this.columns) column.splice(0, old);
      }
      if (added && this.plot) { this.plot.destroy(); this.plot = null; }
      this.dirty = true;
      if (!this.plot) this.draw(); // a new plot appears at once; later samples every 500 ms
    }

    span() {
      const first = this.times[0], last = this.times[this.times.length - 1];
      return last - first < 10 ? [last - 10, last + 0.5] : [first, last];
    }

    draw() {
      if (!this.dirty) return;
      this.dirty = false;
      const data = [this.times, ...this.columns];
      const last = {};
      this.names.forEach((name, index) => {
        const column = this.columns[index];
        for (let i = column.length - 1; i >= 0; i -= 1) if (column[i] !== null) { last[name] = column[i]; break; }
      });
      Object.assign(this.figure.dataset, { points: String(this.times.length), series: this.names.join(","), last: JSON.stringify(last) });
      const area = this.figure.querySelector(".plot");
      const width = Math.max(280, area.clientWidth || 400);
      if (!this.plot) {
        area.replaceChildren();
        this.plot = new uPlot({
          width, height: 150,
          // from the samples kept, at least 10 s wide (uPlot would stretch a lone sample over years)
          scales: { x: { time: true, range: () => this.span() } },
          legend: { live: false },
          cursor: { drag: { x: false, y: false } },
          series: [{}, ...this.names.map((name, index) => ({
            label: name, stroke: COLORS[index % COLORS.length], width: 1.5, spanGaps: true,
            value: (u, v) => (v === null || v === undefined ? "–" : Number(v.toPrecision(4)).toString()),
          }))],
          axes: [{ stroke: "#687185", grid: { stroke: "#eef0f4" } },
            { stroke: "#687185", grid: { stroke: "#eef0f4" }, size: axisWidth }],
        }, data, area);
      } else {
        if (Math.abs(this.plot.width - width) > 20) this.plot.setSize({ width, height: 150 });
        this.plot.setData(data);
      }
    }
  }

  // The y axis as wide as its longest tick label.
  function axisWidth(plot, values) {
    const longest = (values || []).reduce((most, value) => Math.max(most, String(value).length), 0);
    return 18 + 7 * Math.max(3, longest);
  }

  function chart(id, title, unit, order) {
    if (!charts.has(id)) charts.set(id, new Chart(id, title, unit, order));
    return charts.get(id);
  }

  const finite = (value) => typeof value === "number" && Number.isFinite(value);

  // -- what the events feed ------------------------------------------------------------------------

  function stats(event) {
    const time = event.time || Date.now() / 1000;
    const rate = {}, latency = {}, lost = {}, skipped = {};
    for (const [name, node] of Object.entries(event.nodes || {})) {
      if (finite(node.rate)) rate[name] = node.rate;
      const inputs = Object.values(node.inputs || {});
      if (!inputs.length) continue;
      const latencies = inputs.map((edge) => edge.latency_p50_ms).filter(finite);
      if (latencies.length) latency[name] = Math.max(...latencies);
      lost[name] = inputs.reduce((sum, edge) => sum + (edge.lost || 0), 0);
      skipped[name] = inputs.reduce((sum, edge) => sum + (edge.skipped || 0), 0);
    }
    chart("rate", "Node rate", "steps/s", 1).add(time, rate);
    if (Object.keys(latency).length) chart("latency", "Input latency p50", "ms", 2).add(time, latency);
    if (Object.keys(lost).length) chart("lost", "Chunks lost", "total", 3).add(time, lost);
    if (Object.keys(skipped).length) chart("skipped", "Chunks skipped (latest only)", "total", 4).add(time, skipped);
    const worker = event.worker;
    if (worker && event.resources) {
      chart("cpu", "Worker CPU", "% of one core", 5).add(time, { [worker]: event.resources.cpu_percent });
      chart("memory", "Worker memory", "MB", 6).add(time, { [worker]: event.resources.memory_bytes / 1e6 });
    }
    if (worker && event.clock && finite(event.clock.offset)) {
      chart("offset", "Worker clock offset", "ms", 7).add(time, { [worker]: event.clock.offset * 1000 });
    }
  }

  function clockLike(record, value) { return /time/i.test(record) && value > 1e9; }

  // Numeric preview records: plotted once they change, listed once while they do not.
  function preview(node, records, time = Date.now() / 1000) {
    for (const [record, entry] of Object.entries(records || {})) {
      if (!entry || !finite(entry.value) || clockLike(record, entry.value)) continue;
      const key = `${node}/${record}`;
      let seen = numeric.get(key);
      if (!seen) {
        seen = { first: entry.value, changed: false };
        numeric.set(key, seen);
      }
      if (!seen.changed && entry.value !== seen.first) {
        seen.changed = true;
        staticList.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
      }
      if (seen.changed) {
        const level = /dbfs/i.test(record);
        const target = level ? chart("levels", "Audio levels", "dBFS", 8) : chart(`outputs-${node}`, `Outputs of ${node}`, "", 9);
        target.add(time, { [level ? key : record]: entry.value });
      } else if (!staticList.querySelector(`[data-key="${CSS.escape(key)}"]`)) {
        staticList.append(element("li", { "data-key": key }, element("strong", {}, node), ` · ${record} = ${Number(entry.value.toPrecision(6))}`));
      }
    }
    staticList.parentElement.hidden = !staticList.children.length;
  }

  function reset() {
    for (const item of charts.values()) { item.plot?.destroy(); item.figure.remove(); }
    charts.clear();
    numeric.clear();
    if (staticList) staticList.replaceChildren();
    if (container && !container.querySelector(".chart")) {
      container.replaceChildren(element("p", { class: "muted" }, "Plots appear while the pipeline runs."));
    }
  }

  function setup() {
    container = document.getElementById("charts");
    staticList = document.getElementById("static-values");
    const select = document.getElementById("window");
    for (const seconds of windowChoices) {
      const option = element("option", { value: String(seconds) }, `last ${seconds / 60} min`);
      if (seconds === windowSeconds) option.selected = true;
      select.append(option);
    }
    select.addEventListener("change", () => { windowSeconds = Number(select.value); });
    reset();
    setInterval(() => { for (const item of charts.values()) item.draw(); }, 500);
    window.addEventListener("resize", () => { for (const item of charts.values()) item.dirty = true; });
  }

  return { setup, stats, preview, reset };
})();
