"""The dashboard's live view in headless Chromium: plots over time, static values, the graph by
Worker, the log filtered by node and level, errors folded. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json

import chimerapy as cp
import pytest
from support.browser import ARTIFACTS, chromium_page, dashboard_url, origin, require_browser
from support.nodes import RaisesIn, Talker

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

sync_api = require_browser()


@pytest.fixture
def page():
    with chromium_page(sync_api) as tab:
        yield tab


@pytest.fixture
def running_pipeline(cluster):
    """w1: a test pattern into a recorder, a talking node and one that fails at teardown;
    w2: noise into a level meter."""
    video = pytest.importorskip("chimerapy_nodes_video")
    audio = pytest.importorskip("chimerapy_nodes_audio")
    manager, _ = cluster("w1", "w2")
    camera, recorder = video.TestPattern("camera", width=320, height=240, fps=15), video.VideoRecorder("recorder")
    tone = audio.Tone("tone", waveform="noise", amplitude=0.3, samplerate=16000, blocksize=1600)
    level = audio.AudioLevel("level")
    graph = cp.Graph()
    graph.add_edge(camera, recorder)
    graph.add_edge(tone, level)
    graph.add_nodes([Talker("talker"), RaisesIn("broken", "teardown")])
    assert manager.commit_graph(graph, {"w1": ["camera", "recorder", "talker", "broken"], "w2": ["tone", "level"]})
    assert manager.start()
    return manager


def chart(page, name):
    return page.locator(f'#charts figure[data-chart="{name}"]')


def wait_for_points(page, name, more_than):
    page.wait_for_function(
        "([name, count]) => Number(document.querySelector(`#charts figure[data-chart=\"${name}\"]`)"
        "?.dataset.points || 0) > count", arg=[name, more_than], timeout=30_000)


def test_live_view_plots_values_over_time_and_groups_the_graph_by_worker(running_pipeline, page):
    manager = running_pipeline
    expect = sync_api.expect
    page.goto(dashboard_url(manager))
    expect(page.locator("#cluster-state")).to_have_text("running")

    # node rates, latencies, losses; Worker CPU, memory and clock offset; audio levels
    wait_for_points(page, "rate", 3)
    for name in ("rate", "latency", "lost", "skipped", "cpu", "memory", "offset", "levels"):
        expect(chart(page, name).locator("canvas").first).to_be_visible()
    for node in ("camera", "recorder", "tone", "level"):
        expect(chart(page, "rate")).to_have_attribute("data-series", _contains(node))
    expect(chart(page, "cpu")).to_have_attribute("data-series", _contains("w1"))
    expect(chart(page, "cpu")).to_have_attribute("data-series", _contains("w2"))
    expect(chart(page, "levels")).to_have_attribute("data-series", _contains("level/level_dbfs"))
    first = json.loads(chart(page, "levels").get_attribute("data-last"))
    points = int(chart(page, "levels").get_attribute("data-points"))
    wait_for_points(page, "levels", points + 3)  # the window scrolls on: new samples, new values
    later = json.loads(chart(page, "levels").get_attribute("data-last"))
    assert -60 < later["level/level_dbfs"] < 0 and later != first
    last_rate = json.loads(chart(page, "rate").get_attribute("data-last"))
    assert 10 < last_rate["camera"] < 20  # 15 frames per second

    # values that never change are listed once, not plotted nor shown as tiles
    statics = page.locator("#static-values")
    expect(statics.locator('li[data-key="level/rate"]')).to_have_text("level · rate = 16000")
    expect(statics.locator('li[data-key="level/channels"]')).to_have_count(1)
    assert page.locator("#charts figure[data-chart='outputs-level']").count() == 0 or \
        "rate" not in chart(page, "outputs-level").get_attribute("data-series").split(",")
    expect(page.locator('#previews figure[data-key="camera/frame"] img')).to_have_count(1)
    expect(page.locator("#previews figure.value, #previews meter")).to_have_count(0)

    # the graph: a box per Worker holding its nodes
    boxes = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#graph .worker-group')].map(g => {
        const r = g.querySelector('rect').getBBox(); return [g.dataset.worker, [r.x, r.y, r.x + r.width, r.y + r.height]]; }))""")
    assert sorted(boxes) == ["w1", "w2"]
    nodes = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#graph .graph-node')].map(g => {
        const r = g.querySelector('rect').getBBox(); return [g.dataset.node, [r.x, r.y, r.x + r.width, r.y + r.height]]; }))""")
    for node, worker in {"camera": "w1", "recorder": "w1", "talker": "w1", "broken": "w1", "tone": "w2",
                         "level": "w2"}.items():
        (x0, y0, x1, y1), (bx0, by0, bx1, by1) = nodes[node], boxes[worker]
        assert bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1, (node, nodes[node], worker, boxes[worker])
    page.screenshot(path=str(ARTIFACTS / "live-view.png"), full_page=True)
    page.evaluate("() => { document.querySelector('header.bar').style.position = 'static'; }")  # not over the panel
    page.locator("#plots-panel").screenshot(path=str(ARTIFACTS / "live-plots.png"))
    page.locator("#graph-panel").screenshot(path=str(ARTIFACTS / "live-graph.png"))

    # the log, filtered by node and by level
    expect(page.locator('#log .log-line[data-node="talker"]').first).to_contain_text("talker says hello 42")
    page.select_option("#log-node", "talker")
    shown = page.locator("#log .log-line")
    expect(shown.first).to_be_visible()
    assert set(shown.evaluate_all("lines => lines.map(line => line.dataset.node)")) == {"talker"}
    page.select_option("#log-level", "WARNING")
    expect(shown).to_have_count(0)  # the talker only says hello, at INFO
    page.select_option("#log-node", "")

    # an error: its traceback folded under one line, in the errors panel and in the log
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=60_000)
    error = page.locator("#errors details.error-item").first
    expect(error.locator("summary")).to_contain_text("broken raised in teardown")
    expect(error.locator("pre")).to_be_hidden()
    error.locator("summary").click()
    expect(error.locator("pre")).to_contain_text("fails in teardown on purpose")
    folded = page.locator('#log details.log-line[data-node="broken"]').first
    expect(folded.locator("summary")).to_contain_text("ERROR")
    expect(folded.locator("pre")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "live-view-stopped.png"), full_page=True)

    assert page.problems == [], page.problems
    assert all(url.startswith((origin(manager), "data:", "ws://")) for url in page.requested), page.requested


def _contains(word: str):
    import re

    return re.compile(rf"(^|,){re.escape(word)}(,|$)")


def test_a_registered_method_called_from_the_dashboard_changes_the_output(cluster, page):
    from support.nodes import Tunable

    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(Tunable("tune"))
    assert manager.commit_graph(graph, {"w1": ["tune"]})
    assert manager.start()
    expect = sync_api.expect
    page.goto(dashboard_url(manager))
    expect(page.locator("#cluster-state")).to_have_text("running")
    expect(page.locator('#static-values li[data-key="tune/level"]')).to_have_text("tune · level = 1")  # unchanged

    form = page.locator('#methods form[data-node="tune"][data-method="set_level"]')
    expect(form).to_contain_text("Set the emitted level")
    form.locator('input[name="level"]').fill("seven")
    form.locator("button[type=submit]").click()
    expect(form.locator("output")).to_contain_text("'level' takes float, not 'seven'")
    form.locator('input[name="level"]').fill("5")
    form.locator("button[type=submit]").click()
    expect(form.locator("output")).to_have_text("→ 1")  # the previous level
    page.wait_for_function(  # the value changed: now plotted, no longer a static value
        "() => JSON.parse(document.querySelector('#charts figure[data-chart=\"outputs-tune\"]')?.dataset.last || '{}')"
        ".level === 5", timeout=20_000)
    expect(page.locator('#static-values li[data-key="tune/level"]')).to_have_count(0)
    expect(page.locator('#log .log-line[data-node="tune"]').last).to_contain_text("called tune.set_level(level=5) -> 1.0")
    page.locator("#methods-panel").screenshot(path=str(ARTIFACTS / "methods.png"))

    assert manager.stop()  # stopped by the program, not from this page: the page still hears how it ended
    expect(page.locator("#notice")).to_contain_text("Collected", timeout=60_000)
    expect(page.locator("#notice")).not_to_contain_text("Collecting")
    assert [p for p in page.problems if "422" not in p] == [], page.problems  # the refused "seven" only
