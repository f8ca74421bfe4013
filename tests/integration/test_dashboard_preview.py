"""Preview then Record from the dashboard in headless Chromium: live thumbnails while nothing is
written, then files once recording. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import chimerapy as cp
import pytest
from support.archive import wait_for
from support.browser import ARTIFACTS, chromium_page, dashboard_url, origin, require_browser
from support.nodes import JsonSink, PrepCountingCamera, prep_pids

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

sync_api = require_browser()


@pytest.fixture
def page():
    with chromium_page(sync_api) as tab:
        yield tab


def files_under(folder):
    """Every file below ``folder`` but the session's own meta.json and log (none if it is missing)."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name not in ("meta.json", "chimerapy.log"))


def test_preview_shows_live_thumbnails_while_nothing_is_written_then_record_writes(cluster, page, tmp_path):
    manager, (worker,) = cluster("w1")
    prep_log = tmp_path / "preps.txt"
    camera, sink = PrepCountingCamera("camera", prep_log), JsonSink("sink")
    graph = cp.Graph()
    graph.add_edge(camera, sink)
    assert manager.commit_graph(graph, {"w1": ["camera", "sink"]})
    session, logdir = manager.session.id, manager.logdir
    scratch = worker.files.session_dir(session)  # where the Worker's nodes write while recording
    expect = sync_api.expect
    page.goto(dashboard_url(manager))
    expect(page.locator("#cluster-state")).to_have_text("committed")
    expect(page.locator("#preview")).to_be_enabled()

    page.click("#preview")
    expect(page.locator("#cluster-state")).to_have_text("preview")
    expect(page.locator("#preview")).to_be_disabled()
    expect(page.locator("#start")).to_have_text("Record")
    expect(page.locator("#start")).to_be_enabled()
    thumbnail = page.locator('#previews figure[data-key="camera/frame"] img')
    expect(thumbnail).to_have_count(1)
    first = thumbnail.get_attribute("src")
    page.wait_for_function("first => document.querySelector('#previews figure[data-key=\"camera/frame\"] img').src "
                           "!== first", arg=first, timeout=20_000)  # live: the next frame replaced it
    unsaved = page.locator('#nodes tr[data-node="camera"] .unsaved')
    expect(unsaved).to_contain_text("saves not written")
    page.wait_for_function("() => Number(document.querySelector('#nodes tr[data-node=\"camera\"] .unsaved')"
                           "?.dataset.calls || 0) >= 10")
    expect(page.locator('#nodes tr[data-node="camera"] .badge')).to_have_text("preview")
    assert files_under(logdir) == [] and files_under(scratch) == []  # no record file anywhere
    page.screenshot(path=str(ARTIFACTS / "preview.png"), full_page=True)

    page.click("#start")
    expect(page.locator("#cluster-state")).to_have_text("running")
    expect(unsaved).to_have_count(0)
    wait_for(lambda: {"camera/rows.csv", "camera/video.mp4", "sink/seen.jsonl"} <= set(files_under(scratch)), 30,
             "recording wrote no files on the Worker")
    assert len(prep_pids(prep_log)) == 1  # recording began in the nodes that previewed: prep ran once
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=60_000)
    # "stopped" comes before the collection ends: once the session is listed complete, it is in
    expect(page.locator(f'#archive details[data-session="{session}"] .badge')).to_have_text("complete",
                                                                                          timeout=60_000)
    assert {"w1/camera/rows.csv", "w1/camera/video.mp4", "w1/sink/seen.jsonl"} <= set(files_under(logdir))
    page.screenshot(path=str(ARTIFACTS / "preview-then-record.png"), full_page=True)

    # a further recording of the committed pipeline, in a session folder of its own
    expect(page.locator("#preview")).to_be_enabled()
    page.click("#start")  # after a stop: the nodes are created again (new processes, prep), then started
    expect(page.locator("#cluster-state")).to_have_text("running", timeout=60_000)
    expect(page.locator("#session")).not_to_have_text(session)
    second = manager.session.id
    assert second != session and manager.logdir != logdir
    wait_for(lambda: "camera/rows.csv" in files_under(worker.files.session_dir(second)), 30,
             "the further recording wrote no files")
    page.click("#stop")
    expect(page.locator("#cluster-state")).to_have_text("stopped", timeout=60_000)
    expect(page.locator(f'#archive details[data-session="{second}"] .badge')).to_have_text("complete",
                                                                                         timeout=60_000)
    expect(page.locator(f'#archive details[data-session="{session}"] .badge')).to_have_text("complete")
    assert "w1/camera/rows.csv" in files_under(manager.logdir) and len(prep_pids(prep_log)) == 2

    assert page.problems == [], page.problems
    assert all(url.startswith((origin(manager), "data:", "ws://")) for url in page.requested), page.requested
