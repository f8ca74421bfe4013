"""The dashboard's Review in headless Chromium: a recorded session (a test pattern whose frames carry
their index, a tone, a table, JSON and text events) opened from the archive plays on one timeline;
scrubbed to a time, the video shows that time's frame (read back from its pixels); its check is
beside it; a title and notes go into meta.json. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import bisect
import json
import time

import numpy as np
import pytest
from support.browser import ARTIFACTS, chromium_page, origin, require_browser
from support.nodes import Annotator

import chimerapy as cp

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

sync_api = require_browser()
video = pytest.importorskip("chimerapy_nodes_video")
audio = pytest.importorskip("chimerapy_nodes_audio")
FPS = 15


@pytest.fixture
def page():
    with chromium_page(sync_api, height=1300) as tab:
        yield tab


@pytest.fixture
def recorded(cluster):
    """A collected session: w1 a 320x240 test pattern at 15 fps and the annotator, w2 their video
    recorder, a tone and its audio recorder."""
    manager, _ = cluster("w1", "w2")
    graph = cp.Graph()
    camera = video.TestPattern("camera", width=320, height=240, fps=FPS)
    tone = audio.Tone("tone", frequency=220.0, amplitude=0.4, samplerate=16000, blocksize=1600)
    graph.add_edge(camera, video.VideoRecorder("recorder", fps=FPS))
    graph.add_edge(tone, audio.AudioRecorder("microphone", record_name="sound"))
    graph.add_node(Annotator("annotator"))
    assert manager.commit_graph(graph, {"w1": ["camera", "annotator"], "w2": ["recorder", "tone", "microphone"]})
    assert manager.start()
    deadline = time.monotonic() + 60
    while manager.node_stats.get("recorder", {}).get("steps", 0) < 5 * FPS:  # 5 s of video
        assert time.monotonic() < deadline, "the recorder is too slow"
        time.sleep(0.05)
    assert manager.stop()
    return manager


def frame_code(page, key):
    """The index the test pattern drew into the frame on show in the video of stream ``key``."""
    pixels = page.evaluate("""(key) => {
        const video = document.querySelector(`#review-media figure[data-stream="${key}"] video`);
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0);
        return [canvas.width, canvas.height, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
    }""", key)
    width, height, data = pixels
    frame = np.array(data, np.uint8).reshape(height, width, 4)[..., 2::-1]  # RGBA -> BGR
    return video.read_frame_code(np.ascontiguousarray(frame))


def settled(page, key):
    """Wait until the video of ``key`` shows the frame the timeline asks for; that frame's index."""
    figure = f'#review-media figure[data-stream="{key}"]'
    page.wait_for_function(f"""() => {{ const f = document.querySelector('{figure}');
        return f && f.dataset.frame !== "" && f.dataset.shown === f.dataset.frame; }}""", timeout=20_000)
    return int(page.locator(figure).get_attribute("data-frame"))


def test_a_recorded_session_plays_scrubs_and_keeps_its_notes(recorded, page):
    manager = recorded
    expect = sync_api.expect
    session = manager.session.id
    meta = json.loads((manager.session.path / "meta.json").read_text())
    page.goto(manager.dashboard_url())
    entry = page.locator(f'#archive details[data-session="{session}"]')
    expect(entry).to_contain_text("complete")
    entry.locator("button.review-open").click()
    panel = page.locator("#review-panel")
    expect(panel).to_have_attribute("data-ready", "true")
    overview = page.evaluate(f"() => api('GET', '/api/sessions/{session}/streams')")
    times = next(s for s in overview["streams"] if s["key"] == "recorder/video")["times"]

    def expected_frame():  # the frame recorded last at or before the time on show
        return bisect.bisect_right(times, float(panel.get_attribute("data-now"))) - 1

    # everything recorded is on the page: the video, the sound, the plots, the events as markers
    key = "recorder/video"
    expect(page.locator(f'#review-media figure[data-stream="{key}"] video')).to_have_count(1)
    expect(page.locator('#review-media figure[data-stream="microphone/sound"] audio')).to_have_count(1)
    for chart in ("annotator/values", "microphone/sound"):
        expect(page.locator(f'#review-plots figure[data-chart="{chart}"] canvas').first).to_be_visible()
    expect(page.locator('#review-plots figure[data-chart="annotator/values"]')).to_have_attribute("data-series", "step,wave")
    expect(page.locator('#review-markers .marker-row[data-row="annotator/events"] .marker').first).to_be_visible()
    expect(page.locator('#review-markers .marker-row[data-row="annotator/notes"] .marker').first).to_be_visible()
    assert settled(page, key) == 0 and frame_code(page, key) == 0

    # the check beside it: the one collected into meta.json
    report = page.locator("#review-report")
    expect(report).to_have_attribute("data-clean", str(meta["check"]["clean"]).lower())
    expect(report.locator("table.report-streams tbody tr")).to_have_count(len(meta["check"]["streams"]))
    expect(report.locator(f'tr[data-stream="{key}"]')).to_contain_text(str(len(times)))

    # play: the timeline and the video move on together; paused, the frame is the time's frame
    page.click("#review-play")
    expect(panel).to_have_attribute("data-playing", "true")
    page.wait_for_function("() => Number(document.querySelector('#review-panel').dataset.time) > 1.5", timeout=20_000)
    assert page.evaluate(f"""() => !document.querySelector('#review-media figure[data-stream="{key}"] video').paused""")
    page.screenshot(path=str(ARTIFACTS / "review-playing.png"), full_page=True)
    page.click("#review-play")
    expect(panel).to_have_attribute("data-playing", "false")
    shown = settled(page, key)
    assert shown == expected_frame() > 15 and frame_code(page, key) == shown

    # scrub: a click at 60% of the timeline shows the frame recorded at that time
    timeline = page.locator("#review-time")
    box = timeline.bounding_box()
    timeline.click(position={"x": 0.6 * box["width"], "y": box["height"] / 2})
    page.wait_for_function("() => Math.abs(Number(document.querySelector('#review-panel').dataset.time) / "
                           "Number(document.querySelector('#review-time').max) - 0.6) < 0.05")
    shown = settled(page, key)
    assert shown == expected_frame() and 0.5 * len(times) < shown < 0.7 * len(times)
    assert frame_code(page, key) == shown
    page.click("#review-forward")  # one frame on
    assert settled(page, key) == shown + 1 == expected_frame() and frame_code(page, key) == shown + 1

    # an event marker moves the timeline to its time; the events list shows what happened then
    markers = page.locator('#review-markers .marker-row[data-row="annotator/events"] .marker')
    second = markers.nth(1)
    second.dispatch_event("click")  # markers of items saved ms apart (a late node catching up) overlap
    assert float(panel.get_attribute("data-now")) == float(second.get_attribute("data-time"))
    expect(page.locator('#review-events li[data-stream="annotator/events"]')).to_contain_text('{"event":"tick","i":10}')
    expect(page.locator('#review-events li[data-stream="annotator/notes"]')).to_contain_text("note 0")  # saved just after
    shown = settled(page, key)
    assert shown == expected_frame() and frame_code(page, key) == shown
    page.locator('#review-markers .marker-row[data-row="annotator/notes"] .marker').nth(1).dispatch_event("click")
    expect(page.locator('#review-events li[data-stream="annotator/notes"]')).to_contain_text("note 10")

    # a title and notes, saved into meta.json and shown in the archive
    page.fill("#review-title", "Pilot 7")
    page.fill("#review-notes", "The box bounced.\nRedo the second task.")
    page.click("#review-form button[type=submit]")
    expect(page.locator("#review-saved")).to_contain_text("saved")
    saved = json.loads((manager.session.path / "meta.json").read_text())["review"]
    assert (saved["title"], saved["notes"]) == ("Pilot 7", "The box bounced.\nRedo the second task.")
    assert (manager.session.path / "meta.json").stat().st_mode & 0o777 == 0o600
    expect(entry.locator(".session-title")).to_have_text("Pilot 7 ")

    page.evaluate("() => { document.querySelector('header.bar').style.position = 'static'; }")  # not over the panel
    panel.screenshot(path=str(ARTIFACTS / "review.png"))
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
    assert page.problems == [], page.problems
    assert all(url.startswith((origin(manager), "data:", "wss://")) for url in page.requested), page.requested
