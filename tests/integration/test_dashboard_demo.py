"""The demo pipeline end to end in headless Chromium, by clicks alone, on a real cluster: `chimerapy
manager` and two `cp-worker` processes joined as the Manager prints. Build ``examples/demo.json``
from the registry (a wrong option's error first), save it, run it and watch its plots change, stop
it, then review its recording: play, scrub, and see the frame recorded at that time.

Screenshots go to ``test-artifacts/`` (``demo-*.png``); with ``CHIMERAPY_README_IMAGES=1`` they also
replace the README's pictures in ``docs/images/``:
``CHIMERAPY_README_IMAGES=1 python -m pytest tests/integration/test_dashboard_demo.py``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import chimerapy as cp
import numpy as np
import pytest
from chimerapy.net import auth
from chimerapy.pipeline_checks import check_pipeline
from support.browser import ARTIFACTS, chromium_page, require_browser
from support.processes import new_marker, wait_until_gone

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

sync_api = require_browser()
video = pytest.importorskip("chimerapy_nodes_video")
pytest.importorskip("chimerapy_nodes_audio")
pytest.importorskip("chimerapy_nodes_ml")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.json"
README_IMAGES = ROOT / "docs" / "images"
WORKERS = ("camera-laptop", "mic-laptop")


@dataclass
class CliCluster:
    """A `chimerapy manager` process and its Workers, as a user starts them."""

    logdir: Path
    dashboard: str  # the one-time link the Manager printed
    join: str  # the `cp-worker` command it printed


def _drain(stream, into: list[str]) -> None:
    into.extend(stream)  # line by line, until the process closes it


@pytest.fixture
def cli_cluster(tmp_path) -> Iterator[CliCluster]:
    """`chimerapy manager` on a free port logging into a private folder, and one `cp-worker` per name
    in WORKERS run as printed (the token from the printed token file, the certificate pinned).
    Everything, node processes included, is ended after the test."""
    marker, env = new_marker()
    env.pop(auth.TOKEN_ENV, None)  # the Workers read the token file the Manager prints
    logdir = tmp_path / "runs"
    manager = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.main", "manager", "--port", "0",
                                "--logdir", str(logdir)], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: list[str] = []
    processes = [manager]
    try:
        while not printed or not printed[-1].startswith("Workers join with"):
            line = manager.stdout.readline()
            assert line, "the Manager ended early:\n" + "".join(printed)
            printed.append(line)
        join = manager.stdout.readline().strip()
        threading.Thread(target=_drain, args=(manager.stdout, printed), daemon=True).start()
        dashboard = next(line for line in printed if line.startswith("dashboard")).split()[-1]
        for name in WORKERS:
            argv = shlex.split(join.replace("<name>", name))
            assert argv[0] == "cp-worker" and "--token-file" in argv and "--fingerprint" in argv
            log = (tmp_path / f"{name}.log").open("w")
            processes.append(subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", *argv[1:]], env=env,
                                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        yield CliCluster(logdir, dashboard, join)
    finally:
        for process in reversed(processes):  # the Workers first, then the Manager
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(processes):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        left = wait_until_gone(marker)
        assert not left, f"processes left behind: {[p.pid for p in left]}\n" + "".join(printed)


@pytest.fixture
def page():
    """A Chromium page whose assertions wait up to 20 s (checks and commits of seven nodes on two
    loaded cores take longer than Playwright's 5 s)."""
    sync_api.expect.set_options(timeout=20_000)
    try:
        with chromium_page(sync_api, height=1300) as tab:
            yield tab
    finally:
        sync_api.expect.set_options(timeout=None)  # Playwright's default again


def keep_screenshot(locator, name: str, readme_name: str | None = None, *, max_height: int | None = None) -> None:
    """``locator``'s picture (its top ``max_height`` pixels) as test-artifacts/demo-NAME.png, and as
    docs/images/README_NAME when CHIMERAPY_README_IMAGES=1."""
    path = ARTIFACTS / f"demo-{name}.png"
    box = locator.evaluate("(e) => { const r = e.getBoundingClientRect(); "
                           "return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }")
    if max_height is None or box["height"] <= max_height:
        locator.screenshot(path=str(path))
    else:  # the page's coordinates, not the viewport's
        locator.page.screenshot(path=str(path), full_page=True, clip={**box, "height": max_height})
    if readme_name and os.environ.get("CHIMERAPY_README_IMAGES") == "1":
        shutil.copyfile(path, README_IMAGES / readme_name)


def chart_reading(page, name: str) -> tuple[int, dict]:
    figure = page.locator(f'#charts figure[data-chart="{name}"]')
    return int(figure.get_attribute("data-points")), json.loads(figure.get_attribute("data-last"))


def frame_code(page, key: str) -> int | None:
    """The index the test pattern drew into the frame on show in the review's video of ``key``."""
    width, height, data = page.evaluate("""(key) => {
        const video = document.querySelector(`#review-media figure[data-stream="${key}"] video`);
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0);
        return [canvas.width, canvas.height, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
    }""", key)
    frame = np.array(data, np.uint8).reshape(height, width, 4)[..., 2::-1]  # RGBA -> BGR
    return video.read_frame_code(np.ascontiguousarray(frame))


def settled(page, key: str) -> int:
    """Wait until the review's video of ``key`` shows the frame the timeline asks for; its index."""
    figure = f'#review-media figure[data-stream="{key}"]'
    page.wait_for_function("""(figure) => { const f = document.querySelector(figure);
        return f && f.dataset.frame !== "" && f.dataset.shown === f.dataset.frame; }""", arg=figure, timeout=20_000)
    return int(page.locator(figure).get_attribute("data-frame"))


def build_demo_by_clicks(page, expect) -> None:
    """examples/demo.json in the editor: every node from the registry, its options, its Worker, every
    edge; the wrong fps typed first, its error seen before anything runs, then fixed."""
    demo = json.loads(DEMO.read_text())
    placed = {node: worker for worker, nodes in demo["mapping"].items() for node in nodes}
    page.fill("#pipeline-name", demo["name"])
    cards = page.locator("#editor-nodes .editor-node")
    for index, node in enumerate(demo["nodes"]):
        page.fill("#registry-filter", node["registry"])  # the registry's search, as a user finds a node
        page.locator(f'#registry li[data-registry="{node["registry"]}"] button.add').click()
        expect(cards).to_have_count(index + 1)
        name = cards.nth(index).locator("input.node-name")
        name.fill(node["name"])
        name.press("Enter")  # a name is taken when the field changes
        card = page.locator(f'#editor-nodes .editor-node[data-name="{node["name"]}"]')
        card.locator("select.node-worker").select_option(placed[node["name"]])
        for option, value in node.get("params", {}).items():
            typed = "thirty" if (node["name"], option) == ("camera", "fps") else json.dumps(value).strip('"')
            card.locator(f'.option[data-option="{option}"] input').fill(typed)
    page.fill("#registry-filter", "")

    # the wrong value's error, from the checks `chimerapy run` makes, shown before anything runs
    camera = page.locator('#editor-nodes .editor-node[data-name="camera"]')
    error = camera.locator('.option[data-option="fps"] .option-error')
    expect(error).to_have_text("video.test_pattern's option 'fps' takes float, not 'thirty' (a string)")
    expect(page.locator("#editor-status")).to_have_text("1 problem(s)")
    expect(page.locator("#cluster-state")).to_have_text("idle")
    keep_screenshot(page.locator("#editor-panel"), "editor-error", "editor.png", max_height=900)
    camera.locator('.option[data-option="fps"] input').fill("30")
    expect(error).to_have_text("")

    follow, latest = page.locator("#edge-follow"), page.locator("#edge-latest")
    for edge in demo["edges"]:
        page.select_option("#edge-source", edge["source"])
        page.select_option("#edge-target", edge["target"])
        follow.set_checked(bool(edge.get("follow")))
        latest.select_option({None: "", True: "yes", False: "no"}[edge.get("latest_only")])
        page.click("#add-edge")
    expect(page.locator("#edge-list li")).to_have_count(len(demo["edges"]))
    expect(page.locator('#edge-list li[data-edge="camera->overlay"]')).to_contain_text("(followed)")
    expect(page.locator("#editor-status")).to_have_text(f"valid: {len(demo['nodes'])} nodes, {len(demo['edges'])} edges")


def same_pipeline(saved: Path, demo: Path) -> None:
    """Both files pass every check and hold the same nodes, options, edges and placement."""
    ours, theirs = check_pipeline(saved).pipeline, check_pipeline(demo).pipeline
    assert [node.model_dump() for node in ours.nodes] == [node.model_dump() for node in theirs.nodes]
    assert [edge.model_dump() for edge in ours.edges] == [edge.model_dump() for edge in theirs.edges]
    assert {w: sorted(n) for w, n in ours.mapping.items()} == {w: sorted(n) for w, n in theirs.mapping.items()}
    assert sorted(w.name for w in ours.workers) == sorted(w.name for w in theirs.workers)


def test_the_demo_built_by_clicks_runs_records_and_reviews(cli_cluster, page):
    expect = sync_api.expect
    page.goto(cli_cluster.dashboard)
    expect(page.locator("#cluster-state")).to_have_text("idle")
    page.evaluate("() => { document.querySelector('header.bar').style.position = 'static'; }")  # not over the panels
    for name in WORKERS:  # both cp-worker processes joined
        expect(page.locator("#workers tbody")).to_contain_text(name, timeout=60_000)

    build_demo_by_clicks(page, expect)
    assert not [p for p in cli_cluster.logdir.iterdir() if p.name not in ("pipelines", ".chimerapy")]  # no session
    expect(page.locator("#pipeline-name")).to_have_value("demo")
    page.click("#save-pipeline")
    expect(page.locator("#notice")).to_contain_text("Saved as")
    same_pipeline(cli_cluster.logdir / "pipelines" / "demo.json", DEMO)
    keep_screenshot(page.locator("#editor-panel"), "editor")

    # run it: the plots' values change over time
    page.click("#commit-pipeline")
    expect(page.locator("#cluster-state")).to_have_text("committed", timeout=120_000)
    page.click("#start")
    expect(page.locator("#cluster-state")).to_have_text("running")
    session = page.locator("#session").text_content()
    levels = '#charts figure[data-chart="levels"]'
    page.wait_for_function("(figure) => Number(document.querySelector(figure)?.dataset.points || 0) > 3",
                           arg=levels, timeout=60_000)
    points, first = chart_reading(page, "levels")
    page.wait_for_function("([figure, count]) => Number(document.querySelector(figure).dataset.points) > count",
                           arg=[levels, points + 3], timeout=30_000)
    _, later = chart_reading(page, "levels")
    assert "level/level_dbfs" in later and later != first, (first, later)
    assert -60 < later["level/level_dbfs"] < 0  # the tone's level in dBFS
    page.wait_for_function(  # 3 s recorded: enough video to scrub in
        "() => Number(JSON.parse(document.querySelector('#charts figure[data-chart=\"rate\"]')?.dataset.last || '{}')"
        ".video || 0) > 0 && document.querySelector('#nodes tbody')?.textContent.includes('video')", timeout=30_000)
    _, rates = chart_reading(page, "rate")
    assert all(rates.get(node, 0) > 0 for node in ("camera", "faces", "overlay", "video", "microphone", "level", "audio")), rates
    page.wait_for_function("() => document.querySelector('#previews figure[data-key=\"overlay/frame\"] img') !== null",
                           timeout=30_000)
    keep_screenshot(page.locator("#plots-panel"), "live-plots", "live-plots.png")
    keep_screenshot(page.locator("#graph-panel"), "live-graph", "live-graph.png")
    page.screenshot(path=str(ARTIFACTS / "demo-live-view.png"), full_page=True)
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=120_000)
    expect(page.locator("#notice")).to_contain_text("Collected", timeout=60_000)

    # review the recording: play, pause, scrub; the frame on show is the archive's frame at that time
    recording = cp.open_session(cli_cluster.logdir / session)
    stream = next(s for s in recording.streams if s.key == "video/camera")
    key = stream.key
    entry = page.locator(f'#archive details[data-session="{session}"]')
    expect(entry).to_contain_text("complete")
    entry.locator("button.review-open").click()
    panel = page.locator("#review-panel")
    expect(panel).to_have_attribute("data-ready", "true")
    expect(page.locator(f'#review-media figure[data-stream="{key}"] video')).to_have_count(1)
    expect(page.locator('#review-media figure[data-stream="audio/microphone"] audio')).to_have_count(1)

    def archive_code() -> int | None:  # the code of the frame the archive holds at the time on show
        return video.read_frame_code(stream.frame_at(float(panel.get_attribute("data-now"))))

    page.click("#review-play")
    expect(panel).to_have_attribute("data-playing", "true")
    page.wait_for_function("() => Number(document.querySelector('#review-panel').dataset.time) > 1", timeout=20_000)
    page.click("#review-play")
    expect(panel).to_have_attribute("data-playing", "false")
    settled(page, key)
    assert frame_code(page, key) == archive_code() is not None

    timeline = page.locator("#review-time")
    box = timeline.bounding_box()
    timeline.click(position={"x": 0.6 * box["width"], "y": box["height"] / 2})
    page.wait_for_function("() => Math.abs(Number(document.querySelector('#review-panel').dataset.time) / "
                           "Number(document.querySelector('#review-time').max) - 0.6) < 0.05")
    shown = settled(page, key)
    assert 0.4 * stream.count < shown < 0.8 * stream.count
    code = frame_code(page, key)
    assert code == archive_code() is not None and code == video.read_frame_code(stream.frame(shown))
    keep_screenshot(panel, "review", "review.png")
    assert page.problems == [], page.problems
