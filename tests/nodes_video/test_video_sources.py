"""Video sources run in-process through chimerapy.testing: camera, video file and test pattern."""

import logging
import re
import time

import numpy as np
import pytest

import chimerapy as cp
from chimerapy.testing import NodeHarness, run_node
from chimerapy_nodes_video import Camera, TestPattern, VideoFile, VideoSourceError, read_frame_code
from video_media import clip_number, rate

pytestmark = pytest.mark.timeout(60)


def values(chunks, name):
    return [chunk.get(name)["value"] for chunk in chunks]


def assert_frames(chunks, shape):
    for chunk in chunks:
        record = chunk.get("frame")
        assert record["content-type"] == "image"
        assert record["value"].dtype == np.uint8 and record["value"].shape == shape


# -- camera ---------------------------------------------------------------------------------------


def test_camera_reads_a_video_file_handed_to_videocapture_and_ends_with_it(make_clip, caplog):
    caplog.set_level(logging.INFO)
    path = make_clip(frames=20, fps=30, size=(160, 120))
    before = time.time()
    with NodeHarness(Camera("cam", device=str(path))) as harness:
        chunks = harness.run(20)
        assert harness.step() is None  # the end of the file: nothing more...
        start = time.monotonic()
        assert harness.run(2) == []
        assert time.monotonic() - start >= 0.15  # ...and the loop idles instead of spinning
    assert len(chunks) == 20
    assert_frames(chunks, (120, 160, 3))
    assert [clip_number(c.get("frame")["value"]) for c in chunks] == list(range(20))
    assert values(chunks, "frame_index") == list(range(20))
    stamps = values(chunks, "timestamp")
    assert before <= stamps[0] and stamps == sorted(stamps)
    assert rate(stamps) == pytest.approx(30, rel=0.05)  # a file plays like a camera, at its own rate
    assert any("end of file after 20 frames" in r.getMessage() for r in caplog.records)
    assert any("opened with" in r.getMessage() and "160x120" in r.getMessage() for r in caplog.records)


def test_camera_plays_a_file_at_the_fps_asked_for(make_clip):
    path = make_clip(frames=12, fps=10)
    chunks = run_node(Camera("cam", device=str(path), fps=50), steps=12)
    assert rate(values(chunks, "timestamp")) == pytest.approx(50, rel=0.1)


@pytest.mark.parametrize(
    "device, expected",
    [
        (97, r"cannot open camera 97: no camera answers at index 97 on this Worker \(on Linux: /dev/video97\)"),
        ("97", r"cannot open camera 97:"),
        ("/dev/video-none", r"cannot open camera '/dev/video-none': no such device or file on this Worker"),
    ],
)
def test_camera_that_cannot_open_raises_naming_the_device(device, expected):
    node = Camera("cam", device=device)
    with pytest.raises(cp.NodeError) as caught:
        run_node(node, steps=1)
    assert caught.value.phase == "prep" and caught.value.node == "cam"
    assert "VideoSourceError" in caught.value.remote_traceback
    assert re.search(expected, caught.value.remote_traceback)


def test_camera_on_a_file_it_cannot_decode(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(cp.NodeError, match="prep") as caught:
        run_node(Camera("cam", device=str(junk)), steps=1)
    assert f"cannot open camera {str(junk)!r}: OpenCV could not read it" in caught.value.remote_traceback


def test_camera_cannot_open_reaches_the_user_at_commit(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(Camera("cam", device=98))
    with pytest.raises(cp.CommitError, match=r"cam \(prep\)") as caught:
        manager.commit_graph(graph, {"w1": ["cam"]}, strict=True)
    (error,) = caught.value.errors
    assert error.node == "cam" and error.worker == "w1"
    assert "cannot open camera 98" in error.remote_traceback


@pytest.mark.parametrize(
    "options, message",
    [
        ({"width": 0}, "width must be a positive int"),
        ({"height": 480.0}, "height must be a positive int"),
        ({"fps": -5}, "fps must be a positive number"),
        ({"fourcc": "MJPEG"}, "fourcc must be 4 characters"),
        ({"backend": "betamax"}, "unknown OpenCV capture backend 'betamax'"),
    ],
)
def test_camera_options_are_checked_when_created(options, message):
    with pytest.raises(ValueError, match=message):
        Camera("cam", **options)


# -- video file -----------------------------------------------------------------------------------


def test_file_plays_every_frame_at_its_native_rate_then_stops(make_clip, caplog):
    caplog.set_level(logging.INFO)
    path = make_clip(frames=15, fps=25, size=(96, 64))
    with NodeHarness(VideoFile("file", path=str(path))) as harness:
        chunks = harness.run(15)
        start = time.monotonic()
        assert harness.run(2) == []
        assert time.monotonic() - start >= 0.15  # idle steps sleep: no busy loop after the end
    assert_frames(chunks, (64, 96, 3))
    assert [clip_number(c.get("frame")["value"]) for c in chunks] == list(range(15))
    assert values(chunks, "file_frame") == list(range(15))
    assert values(chunks, "frame_index") == list(range(15))
    assert rate(values(chunks, "timestamp")) == pytest.approx(25, rel=0.05)
    ended = [r.getMessage() for r in caplog.records if "end of video file" in r.getMessage()]
    assert len(ended) == 1 and "sent the last of 15 frames" in ended[0]


def test_file_starts_at_an_offset_and_loops_back_to_it(make_clip):
    path = make_clip(frames=30, fps=30)
    chunks = run_node(VideoFile("file", path=str(path), start=0.5, loop=True, fps=120), steps=40)
    numbers = [clip_number(c.get("frame")["value"]) for c in chunks]
    assert numbers == list(range(15, 30)) + list(range(15, 30)) + list(range(15, 25))
    assert values(chunks, "file_frame") == numbers
    assert values(chunks, "frame_index") == list(range(40))  # counts on across loops
    assert rate(values(chunks, "timestamp")) == pytest.approx(120, rel=0.1)


def test_file_errors_name_the_file(tmp_path, make_clip):
    with pytest.raises(ValueError, match="no video file given; pass path="):
        VideoFile("file")
    with pytest.raises(ValueError, match="start must be a number of seconds >= 0"):
        VideoFile("file", path="x.mp4", start=-1)
    missing = tmp_path / "missing.mp4"
    with pytest.raises(cp.NodeError) as caught:
        run_node(VideoFile("file", path=str(missing)), steps=1)
    assert f"video file {str(missing)!r} does not exist on Worker host" in caught.value.remote_traceback
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(cp.NodeError) as caught:
        run_node(VideoFile("file", path=str(junk)), steps=1)
    assert f"cannot decode video file {str(junk)!r}" in caught.value.remote_traceback
    short = make_clip("short.mp4", frames=10, fps=10)
    with pytest.raises(cp.NodeError) as caught:
        run_node(VideoFile("file", path=str(short), start=5.0), steps=1)
    assert "no frame could be decoded" in caught.value.remote_traceback
    assert "at start=5.0 s (the file has 10 frames)" in caught.value.remote_traceback


def test_video_source_error_is_a_chimerapy_error_and_an_os_error():
    error = VideoSourceError("cannot open camera 3", source=3)
    assert isinstance(error, cp.ChimeraPyError) and isinstance(error, OSError)
    assert error.source == 3 and str(error) == "cannot open camera 3"


# -- test pattern ---------------------------------------------------------------------------------


def test_test_pattern_numbers_its_frames_and_moves():
    chunks = run_node(TestPattern("tp", width=320, height=240, fps=60), steps=12)
    assert_frames(chunks, (240, 320, 3))
    frames = [c.get("frame")["value"] for c in chunks]
    assert [read_frame_code(f) for f in frames] == list(range(12))
    assert values(chunks, "frame_index") == list(range(12))
    assert not np.array_equal(frames[0][:200], frames[1][:200])  # the picture moves
    assert rate(values(chunks, "timestamp")) == pytest.approx(60, rel=0.05)


def test_test_pattern_is_cheap_at_vga():
    from chimerapy_nodes_video.test_pattern import PatternPainter

    painter = PatternPainter(640, 480)
    start = time.perf_counter()
    for i in range(60):
        painter.paint(i, 1e9 + i / 30)
    per_frame = (time.perf_counter() - start) / 60
    assert per_frame < 0.004  # < 12% of one core at 30 fps, even on a loaded machine


@pytest.mark.parametrize(
    "options, message",
    [({"width": 8}, "width must be an int from 16 to 8192"), ({"height": 100.5}, "height must be an int"),
     ({"fps": 0}, "fps must be a positive number")],
)
def test_test_pattern_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        TestPattern("tp", **options)


class FlakyDevice:
    """A stand-in for cv2.VideoCapture on a live camera: each opening delivers `frames` frames, then fails."""

    openings = 0

    def __init__(self, source, api, frames=3):
        FlakyDevice.openings += 1
        self.left = frames

    def isOpened(self):
        return True

    def set(self, prop, value):
        return False  # like a device that ignores what it is asked

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48, cv2.CAP_PROP_FPS: 30}.get(prop, 0)

    def getBackendName(self):
        return "FAKE"

    def read(self, image=None):  # cv2's signature; a gray frame never fits a BGR buffer: a new array
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.full((48, 64), 200, np.uint8)  # a gray camera

    def release(self):
        pass


def test_a_live_camera_that_stops_delivering_is_reopened(monkeypatch, caplog):
    import chimerapy_nodes_video.camera as camera_module

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(camera_module, "REOPEN_INTERVAL", 0.0)
    monkeypatch.setattr(camera_module.cv2, "VideoCapture", FlakyDevice)
    FlakyDevice.openings = 0
    with NodeHarness(Camera("cam", device=4, width=1280, height=720)) as harness:
        chunks = [harness.step() for _ in range(8)]
    got = [c for c in chunks if c is not None]
    assert [c.get("frame_index")["value"] for c in got] == list(range(6))  # 3 frames, a reopen, 3 more
    assert chunks[3] is None and FlakyDevice.openings == 3
    assert_frames(got, (48, 64, 3))  # gray frames go out as BGR
    messages = [r.getMessage() for r in caplog.records]
    assert any("does not give what was asked (width 1280 -> 64, height 720 -> 48)" in m for m in messages)
    assert sum("stopped delivering frames after 3 frames" in m for m in messages) == 1
    assert any("delivers frames again" in m for m in messages)
