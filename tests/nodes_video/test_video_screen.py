"""Screen capture from a private Xvfb display that the tests start and paint, and its errors."""

import time

import numpy as np
import pytest

import chimerapy as cp
from chimerapy.testing import run_node
from chimerapy_nodes_video import Screen
from video_media import FrameLog, frame_log

pytestmark = pytest.mark.timeout(60)

RED, BLUE = (230, 20, 10), (10, 40, 220)  # RGB


def bgr(rgb):
    return np.array(rgb[::-1], np.uint8)


@pytest.fixture
def painted(xvfb):
    """The display, left half RED and right half BLUE."""
    xvfb.paint((0, 0, 320, 480, RED), (320, 0, 320, 480, BLUE))
    return xvfb


@pytest.mark.display
def test_screen_captures_the_whole_monitor(painted):
    chunks = run_node(Screen("screen", display=painted.name, fps=20), steps=5)
    assert len(chunks) == 5
    frame = chunks[-1].get("frame")["value"]
    assert chunks[-1].get("frame")["content-type"] == "image"
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert (frame[:, :320] == bgr(RED)).all() and (frame[:, 320:] == bgr(BLUE)).all()
    assert [c.get("frame_index")["value"] for c in chunks] == list(range(5))
    stamps = [c.get("timestamp")["value"] for c in chunks]
    assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) == pytest.approx(20, rel=0.1)


@pytest.mark.display
def test_screen_captures_a_region_relative_to_the_monitor(painted):
    (chunk,) = run_node(Screen("screen", display=painted.name, region=[300, 10, 40, 20]), steps=1)
    frame = chunk.get("frame")["value"]
    assert frame.shape == (20, 40, 3)
    assert (frame[:, :20] == bgr(RED)).all() and (frame[:, 20:] == bgr(BLUE)).all()


@pytest.mark.display
def test_screen_follows_what_is_drawn(xvfb):
    xvfb.paint((0, 0, 640, 480, RED))
    first = run_node(Screen("screen", display=xvfb.name, region=[0, 0, 8, 8]), steps=1)[0]
    xvfb.paint((0, 0, 640, 480, BLUE))
    second = run_node(Screen("screen", display=xvfb.name, region=[0, 0, 8, 8]), steps=1)[0]
    assert (first.get("frame")["value"] == bgr(RED)).all()
    assert (second.get("frame")["value"] == bgr(BLUE)).all()


@pytest.mark.display
@pytest.mark.timeout(90)
def test_screen_in_a_cluster_sends_the_known_colour(painted, cluster, tmp_path):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(Screen("screen", display=painted.name, region=[0, 0, 320, 240], fps=10),
                   FrameLog("colours", tmp_path / "seen.json", colour=True))
    assert manager.commit_graph(graph, {"w1": ["screen", "colours"]})
    assert manager.start()
    time.sleep(1.5)
    assert manager.stop()
    assert manager.errors == []
    seen = frame_log(tmp_path / "seen.json")
    assert len(seen) >= 10 and [entry[0] for entry in seen] == list(range(len(seen)))
    assert all(colour == bgr(RED).tolist() for *_, colour in seen)


# -- errors (no display needed) -------------------------------------------------------------------


def test_screen_without_a_display_names_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(cp.NodeError) as caught:
        run_node(Screen("screen"), steps=1)
    text = caught.value.remote_traceback
    assert caught.value.phase == "prep" and "VideoSourceError" in text
    assert "video.screen 'screen' has no display to capture: $DISPLAY is not set" in text


def test_screen_on_a_display_that_does_not_run_names_it(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4093")
    with pytest.raises(cp.NodeError) as caught:
        run_node(Screen("screen"), steps=1)
    assert "cannot connect to display ':4093' ($DISPLAY)" in caught.value.remote_traceback
    with pytest.raises(cp.NodeError) as caught:
        run_node(Screen("screen", display=":4094"), steps=1)
    assert "cannot connect to display ':4094'" in caught.value.remote_traceback


@pytest.mark.display
def test_screen_names_missing_monitors_and_regions_that_do_not_fit(xvfb):
    with pytest.raises(cp.NodeError) as caught:
        run_node(Screen("screen", display=xvfb.name, monitor=3), steps=1)
    assert f"there is no monitor 3 on display '{xvfb.name}'" in caught.value.remote_traceback
    assert "1: 640x480 at (0, 0)" in caught.value.remote_traceback
    with pytest.raises(cp.NodeError) as caught:
        run_node(Screen("screen", display=xvfb.name, region=[600, 0, 100, 100]), steps=1)
    assert "region [600, 0, 100, 100] does not fit in monitor 1 (640x480 at (0, 0))" in caught.value.remote_traceback


@pytest.mark.parametrize(
    "options, message",
    [({"monitor": -1}, "monitor must be an int >= 0"), ({"region": [0, 0, 10]}, "region must be"),
     ({"region": [0, 0, 0, 10]}, "region must be"), ({"fps": 0}, "fps must be a positive number")],
)
def test_screen_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        Screen("screen", **options)
