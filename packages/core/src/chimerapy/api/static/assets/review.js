"use strict";
// The Review: a recorded session on one timeline. A range input and Play/Pause drive every element:
// videos (<video>, each frame placed by its recorded time), sound (<audio>, placed by its blocks),
// plots of numeric tables and of the sound's peaks (uPlot, with the current time as a line), images,
// and JSON/text items as markers; the session's check beside it, and a title and notes saved into
// its meta.json. Data from GET /api/sessions/ID/streams and /report; PUT /api/sessions/ID/notes.
// Uses el, api, notify, $ and clockTime from app.js.
//
// For tests and tools: #review-panel has data-session, data-ready, data-playing, data-time (seconds
// from the timeline's start) and data-now (the Manager time on show); each video figure has
// data-frame (the frame the timeline asks for) and data-shown (the frame on show once the player
// got there).

const Review = (() => {
  const COLORS = ["#2456c9", "#d1495b", "#1d7f46", "#a86400", "#7b3fb5", "#0f8b8d", "#c44e9c", "#5d6470"];
  const SPEEDS = [0.25, 0.5, 1, 2, 4];
  const DRIFT = 0.25; // seconds a playing video or sound may stray from the timeline before it is moved
  const PLOT_EVERY = 100; // ms between redraws of the plots' time line and the events while playing

  let view = null; // the session on show (see open())
  let generation = 0; // increases with each open(): answers for an older one are dropped

  const fileUrl = (session, path) =>
    `/api/sessions/${encodeURIComponent(session)}/files/${path.split("/").map(encodeURIComponent).join("/")}`;

  // The index of the latest time at or before t in the sorted times; -1 if none.
  function indexAt(times, t) {
    let low = 0, high = times.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (times[middle] <= t) low = middle + 1; else high = middle;
    }
    return low - 1;
  }

  const seconds = (value) => `${value.toFixed(3)} s`;

  // -- opening a session ---------------------------------------------------------------------------

  async function open(session) {
    close();
    const mine = ++generation;
    const panel = $("review-panel");
    panel.hidden = false;
    panel.dataset.session = session;
    panel.dataset.ready = "false";
    $("review-session").textContent = session;
    $("review-status").textContent = "Loading…";
    panel.scrollIntoView({ block: "start" });
    try {
      const [overview, report] = await Promise.all([
        api("GET", `/api/sessions/${encodeURIComponent(session)}/streams`),
        api("GET", `/api/sessions/${encodeURIComponent(session)}/report`).catch((error) => ({ error: error.message })),
      ]);
      if (mine !== generation) return;
      build(session, overview);
      showReport(report);
      $("review-status").textContent = "";
      panel.dataset.ready = "true";
    } catch (error) {
      if (mine === generation) $("review-status").textContent = error.message;
    }
  }

  function close() {
    if (!view) return;
    pause();
    for (const plot of view.plots) plot.plot.destroy();
    for (const media of [...view.videos, ...view.sounds]) { media.element.removeAttribute("src"); media.element.load(); }
    view = null;
  }

  function build(session, overview) {
    const start = overview.start ?? 0, end = Math.max(overview.end ?? start, start + 0.001);
    view = { session, overview, start, end, time: start, playing: false, speed: 1, anchor: null,
      videos: [], sounds: [], images: [], plots: [], markers: [], lastPlot: 0 };
    const range = $("review-time");
    range.min = "0";
    range.max = String(end - start);
    range.step = "0.001";
    range.value = "0";
    $("review-media").replaceChildren();
    $("review-plots").replaceChildren();
    const streams = overview.streams || [];
    for (const stream of streams) if (stream.error) $("review-media").append(el("p", { className: "error" }, `${stream.key}: ${stream.error}`));
    for (const stream of streams.filter((s) => s.kind === "video" && s.media && s.fps)) addVideo(stream);
    for (const stream of streams.filter((s) => s.kind === "image" && (s.images || []).length)) addImages(stream);
    for (const stream of streams.filter((s) => s.kind === "audio" && s.media)) addSound(stream);
    for (const stream of streams) {
      const columns = Object.keys(stream.series?.columns || {});
      if (columns.length) addPlot(stream, columns);
    }
    if (!$("review-media").childElementCount) $("review-media").append(el("p", { className: "muted" }, "No video, image or sound in this session."));
    view.markers = streams.filter((s) => (s.markers || []).length);
    for (const stream of view.markers) stream.times = stream.markers.map((m) => m.time);
    drawMarkers([]);
    const review = overview.review || {};
    $("review-title").value = review.title || "";
    $("review-notes").value = review.notes || "";
    $("review-saved").textContent = review.updated ? `saved ${new Date(review.updated * 1000).toLocaleString()}` : "";
    seek(start);
  }

  function addVideo(stream) {
    const video = el("video", { src: fileUrl(view.session, stream.media), preload: "auto", muted: true, playsinline: true });
    video.muted = true;
    const info = el("span", { className: "muted frame-info" });
    const figure = el("figure", { className: "review-video", "data-stream": stream.key, "data-frame": "", "data-shown": "" },
      video, el("figcaption", {}, el("strong", {}, stream.node), ` · ${stream.name} `, info));
    const entry = { stream, element: video, figure, info, times: stream.times, fps: stream.fps, wanted: null, at: null };
    video.addEventListener("seeked", () => {
      if (!view?.playing && entry.at !== null && Math.abs(video.currentTime - entry.at) < 0.5 / entry.fps) {
        figure.dataset.shown = String(entry.wanted);
      }
    });
    video.addEventListener("loadeddata", () => { if (!view?.playing) { entry.wanted = null; placeVideo(entry); } });
    $("review-media").append(figure);
    view.videos.push(entry);
  }

  function addImages(stream) {
    const image = el("img", { alt: stream.key, className: "still" });
    const figure = el("figure", { className: "review-image", "data-stream": stream.key },
      image, el("figcaption", {}, el("strong", {}, stream.node), ` · ${stream.name}`));
    $("review-media").append(figure);
    view.images.push({ stream, element: image, figure, times: stream.images.map((item) => item.time), shown: null });
  }

  function addSound(stream) {
    const audio = el("audio", { src: fileUrl(view.session, stream.media), preload: "auto" });
    const mute = el("input", { type: "checkbox", checked: true, "aria-label": `play the sound of ${stream.key}` });
    mute.addEventListener("change", () => { audio.muted = !mute.checked; });
    const figure = el("figure", { className: "review-sound", "data-stream": stream.key },
      audio, el("figcaption", {}, el("label", {}, mute, " ", el("strong", {}, stream.node), ` · ${stream.name} (sound, ${stream.rate} Hz)`)));
    $("review-media").append(figure);
    const blocks = stream.blocks || [];
    view.sounds.push({ stream, element: audio, figure, blocks, blockTimes: blocks.map((b) => b[1]), rate: stream.rate });
  }

  function addPlot(stream, columns) {
    const series = stream.series;
    const sound = stream.kind === "audio";
    const title = sound ? `${stream.key} · sound peaks (fraction of full scale)` : `${stream.key}`;
    const figure = el("figure", { className: "chart", "data-chart": stream.key, "data-points": String(series.times.length),
      "data-series": columns.join(",") }, el("figcaption", {}, title), el("div", { className: "plot" }));
    $("review-plots").append(figure);
    const area = figure.querySelector(".plot");
    const entry = { stream, figure, plot: null };
    entry.plot = new uPlot({
      width: Math.max(300, area.clientWidth || 480), height: 140,
      scales: { x: { time: true, range: () => [view.start, view.end] },
        ...(sound ? { y: { range: (plot, low, high) => [0, Math.max(0.01, (high || 0) * 1.1)] } } : {}) },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      series: [{}, ...columns.map((name, index) => ({ label: name, stroke: COLORS[index % COLORS.length], width: 1.2, spanGaps: true }))],
      axes: [{ stroke: "#687185", grid: { stroke: "#eef0f4" } }, { stroke: "#687185", grid: { stroke: "#eef0f4" }, size: 60 }],
      hooks: { draw: [(plot) => drawNow(plot)] },
    }, [series.times, ...columns.map((name) => series.columns[name])], area);
    entry.plot.over.addEventListener("click", (event) => {
      const time = entry.plot.posToVal(event.offsetX, "x");
      if (Number.isFinite(time)) moveTo(time);
    });
    view.plots.push(entry);
  }

  // The current time as a vertical line on a plot.
  function drawNow(plot) {
    if (!view) return;
    const x = plot.valToPos(view.time, "x", true);
    const { ctx, bbox } = plot;
    ctx.save();
    ctx.strokeStyle = "#d1495b";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.restore();
  }

  // A row per stream of JSON, text or arrays, and one for the check's problems, under the timeline.
  function drawMarkers(problems) {
    const rows = [];
    const span = view.end - view.start;
    const place = (time) => `${(100 * (time - view.start)) / span}%`;
    const row = (label, items, kind) => el("div", { className: "marker-row", "data-row": label },
      el("span", { className: "marker-label", title: label }, label),
      el("div", { className: "marker-track" }, ...items.map((item) => {
        const marker = el("button", { type: "button", className: `marker ${kind}`, title: item.title, "data-time": String(item.time) });
        marker.style.left = place(item.time);
        marker.addEventListener("click", () => moveTo(item.time));
        return marker;
      })));
    for (const stream of view.markers) {
      const more = stream.markers_total > stream.markers.length ? ` (${stream.markers.length} of ${stream.markers_total})` : "";
      rows.push(row(stream.key + more, stream.markers.map((m) => ({ time: m.time, title: `${clockTime(m.time)} ${m.label}` })), stream.kind));
    }
    const timed = problems.filter((p) => p.time !== null && p.time !== undefined);
    if (timed.length) rows.push(row("problems", timed.map((p) => ({ time: p.time, title: `${p.kind}: ${p.message}` })), "problem"));
    $("review-markers").replaceChildren(...rows);
  }

  // -- the timeline --------------------------------------------------------------------------------

  // Move to a Manager time (from a click on a plot, a marker or a problem), playing on if playing.
  function moveTo(time) {
    if (view.playing) view.anchor = { time: clamp(time), wall: performance.now() };
    seek(time);
  }

  const clamp = (time) => Math.min(view.end, Math.max(view.start, time));

  function seek(time) {
    view.time = clamp(time);
    const offset = view.time - view.start;
    $("review-time").value = String(offset);
    Object.assign($("review-panel").dataset, { time: String(offset), now: String(view.time) });
    $("review-clock").textContent = `${seconds(offset)} / ${seconds(view.end - view.start)} · ${clockTime(view.time)}`;
    for (const entry of view.videos) placeVideo(entry);
    for (const entry of view.sounds) placeSound(entry);
    for (const entry of view.images) placeImage(entry);
    const now = performance.now();
    if (!view.playing || now - view.lastPlot > PLOT_EVERY) { // while playing, ten times a second
      view.lastPlot = now;
      for (const entry of view.plots) entry.plot.redraw(false, false);
      showEvents();
    }
  }

  // Frame i of a recorded MP4 is shown from i / fps to (i + 1) / fps: aim at the middle.
  function placeVideo(entry) {
    const { element: video, times, fps, figure } = entry;
    const index = indexAt(times, view.time);
    const frame = Math.max(0, index);
    figure.dataset.state = index < 0 ? "before" : view.time > times[times.length - 1] + 1 / fps ? "after" : "on";
    entry.info.textContent = `frame ${frame} of ${times.length}${index < 0 ? " (not started yet)" : ""}`;
    const at = (frame + 0.5) / fps;
    if (view.playing && figure.dataset.state === "on") {
      video.playbackRate = view.speed;
      if (video.paused || Math.abs(video.currentTime - at) > DRIFT * view.speed) video.currentTime = at;
      if (video.paused) video.play().catch(() => {});
      entry.wanted = frame;
      figure.dataset.frame = String(frame);
      return;
    }
    if (!video.paused) video.pause();
    if (entry.wanted === frame && entry.at === at) return;
    entry.wanted = frame;
    entry.at = at;
    figure.dataset.frame = String(frame);
    if (video.readyState >= 1) video.currentTime = at;
  }

  // The position in the WAV of the sample taken at the current time (from the block it is in).
  function placeSound(entry) {
    const { element: audio, blocks, blockTimes, rate } = entry;
    const block = indexAt(blockTimes, view.time);
    let position = null;
    if (block >= 0) {
      const sample = blocks[block][0] + (view.time - blockTimes[block]) * rate;
      position = (block + 1 < blocks.length ? Math.min(sample, blocks[block + 1][0]) : sample) / rate;
    }
    const inside = position !== null && !(position >= audio.duration);
    if (view.playing && inside) {
      audio.playbackRate = view.speed;
      if (audio.paused || Math.abs(audio.currentTime - position) > DRIFT * view.speed) audio.currentTime = position;
      if (audio.paused) audio.play().catch(() => {});
      return;
    }
    if (!audio.paused) audio.pause();
    if (inside && audio.readyState >= 1) audio.currentTime = position;
  }

  function placeImage(entry) {
    const index = Math.max(0, indexAt(entry.times, view.time));
    if (entry.shown === index) return;
    entry.shown = index;
    entry.element.src = fileUrl(view.session, entry.stream.images[index].file);
    entry.figure.dataset.shown = String(index);
  }

  // The latest item of each marker stream at the current time.
  function showEvents() {
    const items = [];
    for (const stream of view.markers) {
      const index = indexAt(stream.times, view.time);
      if (index < 0) continue;
      const marker = stream.markers[index];
      items.push(el("li", { "data-stream": stream.key },
        el("strong", {}, stream.key), ` ${seconds(marker.time - view.start)} `, el("code", {}, marker.label)));
    }
    $("review-events").replaceChildren(...(items.length ? items : [el("li", { className: "muted" }, "No event yet at this time.")]));
  }

  function play() {
    if (!view) return;
    if (view.time >= view.end) seek(view.start);
    view.playing = true;
    view.anchor = { time: view.time, wall: performance.now() };
    $("review-play").textContent = "Pause";
    $("review-panel").dataset.playing = "true";
    requestAnimationFrame(tick);
  }

  function pause() {
    if (!view) return;
    view.playing = false;
    $("review-play").textContent = "Play";
    $("review-panel").dataset.playing = "false";
    for (const entry of view.videos) entry.wanted = null; // each video back on the exact frame
    seek(view.time);
  }

  function tick(now) {
    if (!view || !view.playing) return;
    const time = view.anchor.time + ((now - view.anchor.wall) / 1000) * view.speed;
    if (time >= view.end) {
      seek(view.end);
      pause();
      return;
    }
    seek(time);
    requestAnimationFrame(tick);
  }

  // One frame of the first video back or on (or 40 ms without a video).
  function stepFrame(direction) {
    if (!view) return;
    if (view.playing) pause();
    const times = view.videos[0]?.times;
    if (!times?.length) { seek(view.time + direction * 0.04); return; }
    const index = indexAt(times, view.time);
    const next = Math.min(times.length - 1, Math.max(0, index + direction));
    seek(times[next]);
  }

  // -- the check ------------------------------------------------------------------------------------

  function showReport(answer) {
    const area = $("review-report");
    if (answer.error) {
      area.replaceChildren(el("p", { className: "error" }, `The check failed: ${answer.error}`));
      return;
    }
    const report = answer.report;
    area.dataset.clean = String(report.clean);
    const problems = report.problems || [];
    const start = view ? view.start : report.start;
    const verdict = el("p", {},
      el("span", { className: "badge", "data-state": report.clean ? "complete" : "incomplete" },
        report.clean ? "clean" : `${problems.length} problem(s)`),
      el("span", { className: "muted" }, answer.source === "meta.json" ? " checked when collected" : " checked now"),
      answer.html ? el("a", { href: fileUrl(answer.session, answer.html), target: "_blank", rel: "noopener", className: "report-link" }, " report.html") : null);
    const again = el("button", { type: "button", className: "small" }, "Check again");
    again.addEventListener("click", async () => {
      again.disabled = true;
      try {
        showReport(await api("GET", `/api/sessions/${encodeURIComponent(answer.session)}/report?run=1`));
      } catch (error) {
        notify(error.message, "error");
      } finally {
        again.disabled = false;
      }
    });
    verdict.append(again);
    const problemList = el("ul", { className: "problems" }, ...problems.map((problem) => {
      const when = problem.time === null || problem.time === undefined ? "" : `${seconds(problem.time - start)} `;
      const item = el("li", { className: "problem", "data-kind": problem.kind },
        el("strong", {}, problem.kind), ` ${when}`, problem.message);
      if (when) item.addEventListener("click", () => moveTo(problem.time));
      return item;
    }));
    const rate = (stream) => (stream.median_interval > 0 ? `${(1 / stream.median_interval).toFixed(1)}/s` : "–");
    const streams = el("table", { className: "report-streams" },
      el("thead", {}, el("tr", {}, ...["stream", "kind", "items", "rate", "longest gap"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(report.streams || []).map((stream) => el("tr", { "data-stream": stream.key },
        el("td", {}, stream.key), el("td", {}, stream.kind), el("td", { className: "num" }, stream.count),
        el("td", { className: "num" }, rate(stream)), el("td", { className: "num" }, seconds(stream.longest_gap || 0))))));
    const edges = (report.edges || []).map((edge) => el("li", {},
      `${edge.source} → ${edge.target}: received ${edge.received}, lost ${edge.lost}, skipped ${edge.skipped}`));
    const clocks = (report.clocks || []).map((clock) => el("li", {},
      `clock ${clock.worker}: offset ${(clock.offset * 1000).toFixed(3)} ms ± ${(clock.uncertainty * 1000).toFixed(3)} ms`));
    area.replaceChildren(verdict, problemList, streams,
      el("ul", { className: "report-more" }, ...edges, ...clocks, ...(report.notes || []).map((note) => el("li", { className: "muted" }, note))));
    if (view) drawMarkers(problems);
  }

  // -- the title and notes -----------------------------------------------------------------------------

  async function saveNotes(event) {
    event.preventDefault();
    if (!view) return;
    const status = $("review-saved");
    status.textContent = "saving…";
    try {
      const answer = await api("PUT", `/api/sessions/${encodeURIComponent(view.session)}/notes`,
        { title: $("review-title").value, notes: $("review-notes").value });
      status.textContent = `saved ${new Date(answer.review.updated * 1000).toLocaleString()}`;
      status.dataset.ok = "true";
      refreshArchive();
    } catch (error) {
      status.textContent = error.message;
      status.dataset.ok = "false";
    }
  }

  function setup() {
    for (const speed of SPEEDS) $("review-speed").append(el("option", { value: String(speed), selected: speed === 1 }, `${speed}×`));
    $("review-speed").addEventListener("change", (event) => {
      if (!view) return;
      if (view.playing) view.anchor = { time: view.time, wall: performance.now() };
      view.speed = Number(event.target.value);
    });
    $("review-play").addEventListener("click", () => (view?.playing ? pause() : play()));
    $("review-back").addEventListener("click", () => stepFrame(-1));
    $("review-forward").addEventListener("click", () => stepFrame(1));
    $("review-time").addEventListener("input", (event) => { if (view) moveTo(view.start + Number(event.target.value)); });
    $("review-form").addEventListener("submit", saveNotes);
    $("review-close").addEventListener("click", () => { close(); $("review-panel").hidden = true; });
    window.addEventListener("resize", () => {
      for (const entry of view?.plots || []) {
        const width = entry.figure.querySelector(".plot").clientWidth;
        if (width) entry.plot.setSize({ width, height: 140 });
      }
    });
  }

  return { setup, open };
})();
