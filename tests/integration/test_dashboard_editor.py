"""The dashboard's pipeline editor in headless Chromium: build a two-node pipeline by clicks, see
a wrong option's error before anything runs, save it as a file the CLI runs, commit, run and stop
it, and open it again from its session. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json

import pytest
from chimerapy.pipeline_checks import check_pipeline
from support.browser import ARTIFACTS, chromium_page, dashboard_url, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

sync_api = require_browser()
pytest.importorskip("chimerapy_nodes_video")


@pytest.fixture
def page():
    with chromium_page(sync_api, height=1200) as tab:
        yield tab


def test_build_check_save_and_run_a_pipeline_by_clicks(cluster, page):
    manager, _ = cluster("w1", "w2")
    expect = sync_api.expect
    page.goto(dashboard_url(manager))
    expect(page.locator("#cluster-state")).to_have_text("idle")

    # the registry: every node with its documentation and options
    pattern = page.locator('#registry li[data-registry="video.test_pattern"]')
    expect(pattern).to_contain_text("A moving test pattern")
    pattern.locator("summary").click()
    expect(pattern.locator("table.options")).to_contain_text("frames per second.")

    pattern.locator("button.add").click()
    page.locator('#registry li[data-registry="video.recorder"] button.add').click()
    camera = page.locator('#editor-nodes .editor-node[data-name="test_pattern"]')
    recorder = page.locator('#editor-nodes .editor-node[data-name="recorder"]')
    camera.locator("select.node-worker").select_option("w1")
    recorder.locator("select.node-worker").select_option("w2")
    camera.locator('.option[data-option="width"] input').fill("320")
    camera.locator('.option[data-option="height"] input').fill("240")
    camera.locator('.option[data-option="fps"] input').fill("thirty")
    recorder.locator('.option[data-option="record_name"] input').fill("take")
    page.select_option("#edge-source", "test_pattern")
    page.select_option("#edge-target", "recorder")
    page.click("#add-edge")

    # the wrong value's error, from the checks `chimerapy run` makes, before anything runs
    error = camera.locator('.option[data-option="fps"] .option-error')
    expect(error).to_have_text("video.test_pattern's option 'fps' takes float, not 'thirty' (a string)")
    expect(page.locator("#editor-status")).to_have_text("1 problem(s)")
    page.locator("#editor-panel").screenshot(path=str(ARTIFACTS / "editor-error.png"))
    assert manager.state == "idle" and not [p for p in manager.root_logdir.iterdir() if p.name not in ("pipelines", ".chimerapy")]

    camera.locator('.option[data-option="fps"] input').fill("15")
    expect(page.locator("#editor-status")).to_have_text("valid: 2 nodes, 1 edges")
    expect(error).to_have_text("")
    page.fill("#pipeline-name", "two-nodes")
    page.click("#save-pipeline")
    expect(page.locator("#notice")).to_contain_text("Saved as")
    saved = manager.root_logdir / "pipelines" / "two-nodes.json"
    checked = check_pipeline(saved)  # what `chimerapy validate` / `run` take
    assert checked.mapping == {"w1": ["test_pattern"], "w2": ["recorder"]}
    assert json.loads(saved.read_text())["nodes"][0]["params"] == {"width": 320, "height": 240, "fps": 15}
    page.locator("#editor-panel").screenshot(path=str(ARTIFACTS / "editor.png"))

    page.click("#commit-pipeline")
    expect(page.locator("#cluster-state")).to_have_text("committed", timeout=60_000)
    page.click("#start")
    expect(page.locator("#cluster-state")).to_have_text("running")
    page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
        "() => Number(document.querySelector('#charts figure[data-chart=\"rate\"]')?.dataset.points || 0) > 3",
        timeout=30_000)
    session = manager.session.id
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=60_000)
    expect(page.locator("#notice")).to_contain_text("Collected")
    assert (manager.root_logdir / session / "w2" / "recorder" / "take.mp4").stat().st_size > 0

    # the session's pipeline opens again in the editor
    page.click("#editor-nodes .editor-node[data-name='recorder'] button.remove")
    expect(page.locator("#editor-nodes .editor-node")).to_have_count(1)
    page.select_option("#session-pipelines", session)
    page.click("#load-session")
    expect(page.locator("#editor-nodes .editor-node")).to_have_count(2)
    expect(recorder.locator('.option[data-option="record_name"] input')).to_have_value("take")
    expect(page.locator("#edge-list li")).to_have_count(1)
    assert page.problems == [], page.problems
