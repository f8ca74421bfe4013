"""Video pipelines on a real cluster: frame rates held over time, and recordings checked with PyAV."""

import time
import zlib

import pytest

import chimerapy as cp
from chimerapy_nodes_video import Overlay, TestPattern, VideoFile, VideoRecorder, read_frame_code
from chimerapy_nodes_video.overlay import PALETTE
from video_media import (
    FrameLog,
    clip_number,
    frame_log,
    rate,
    read_timestamps,
    read_video,
    recorded,
)

RED = (0, 0, 255)


class StubDetector(cp.Node):
    """A slow ML stand-in: on every third frame, 40 ms later, one "face" box at x = 10 + 2 * frame_index.

    Its results carry the timestamp of the frame they were computed from, as ML nodes do.
    """

    def step(self, data_chunks):
        (chunk,) = data_chunks.values()
        index = chunk.get("frame_index")["value"]
        if index % 3:
            return None
        time.sleep(0.04)
        result = cp.DataChunk()
        result.add("detections", [{"box": [10 + 2 * index, 100, 30, 40], "score": 0.9, "label": "face"}])
        result.add("timestamp", chunk.get("timestamp")["value"])
        return result


def wait_for_outputs(manager, node, count, timeout):
    deadline = time.monotonic() + timeout
    while manager.node_stats.get(node, {}).get("outputs", 0) < count:
        assert time.monotonic() < deadline, f"{node} sent {manager.node_stats.get(node)} of {count} in {timeout} s"
        time.sleep(0.2)


@pytest.mark.timeout(90)
def test_test_pattern_to_recorder_records_every_frame_at_the_source_rate(cluster):
    manager, _ = cluster("w1")
    source, recorder = TestPattern("tp"), VideoRecorder("rec")  # defaults: 640x480 at 30 fps, rate measured
    graph = cp.Graph()
    graph.add_edge(source, recorder)
    assert manager.commit_graph(graph, {"w1": ["tp", "rec"]})
    assert manager.start()
    time.sleep(3.0)
    assert manager.stop()
    assert manager.errors == []
    sent = manager.final_stats["tp"]["outputs"]
    assert sent >= 80
    video_path, times_path = recorded(manager, "w1", "rec", "video")
    frames, fps = read_video(video_path)
    assert fps == 30 and len(frames) == sent
    assert frames[0].shape == (480, 640, 3)
    assert [read_frame_code(f) for f in frames] == list(range(sent))  # none lost, repeated or reordered
    rows = read_timestamps(times_path)
    assert [i for i, _ in rows] == list(range(sent))
    assert rate([t for _, t in rows]) == pytest.approx(30, rel=0.02)  # capture times, from the archive


@pytest.mark.timeout(90)
def test_file_to_overlay_to_recorder_puts_each_box_on_its_frame(cluster, make_clip, tmp_path):
    assert PALETTE[zlib.crc32(b"face") % len(PALETTE)] == RED
    clip = make_clip(frames=60, fps=30, size=(320, 240))
    manager, _ = cluster("w1")
    source, detector = VideoFile("file", path=str(clip)), StubDetector("ml")
    overlay = Overlay("overlay", thickness=3, max_delay=1.0)  # a long bound: no race on a loaded machine
    recorder, log = VideoRecorder("rec", record_name="annotated"), FrameLog("log", tmp_path / "out.json")
    graph = cp.Graph()
    graph.add_edge(source, overlay)  # the followed input: frames
    graph.add_edge(source, detector)
    graph.add_edge(detector, overlay)
    graph.add_edge(overlay, recorder)
    graph.add_edge(overlay, log)
    assert manager.commit_graph(graph, {"w1": ["file", "ml", "overlay", "rec", "log"]})
    assert manager.start()
    wait_for_outputs(manager, "file", 60, timeout=20)
    assert manager.stop()
    assert manager.errors == []
    assert manager.final_stats["file"]["outputs"] == 60
    assert manager.final_stats["overlay"]["outputs"] == 60
    video_path, times_path = recorded(manager, "w1", "rec", "annotated")
    frames, fps = read_video(video_path)
    assert fps == 30 and len(frames) == 60
    numbers = [clip_number(f) for f in frames]
    assert numbers == list(range(60))
    # each frame carries the box of the latest frame the detector processed: itself, or the one
    # 1 or 2 frames earlier that it skipped to
    # (results 6 px apart; the drawn edge is 3 px wide and compression blurs it by a pixel or two)
    box_x = [_leftmost_red_column(f) for f in frames]
    expected = [10 + 2 * (i - i % 3) for i in range(60)]
    assert all(abs(x - e) <= 2.5 for x, e in zip(box_x, expected)), list(zip(numbers, box_x, expected))
    stamps = [t for _, t in read_timestamps(times_path)]
    assert rate(stamps) == pytest.approx(30, rel=0.02)  # the file's native rate, held end to end
    # frames leave when their result arrives (40 ms of "ML" later), not when max_delay runs out;
    # the last two wait for a result that never comes and leave at the stop
    delays = sorted(sent - captured for _, captured, sent in frame_log(tmp_path / "out.json")[:-2])
    assert len(delays) == 58 and delays[len(delays) // 2] < 0.5 and delays[-1] < 1.0 + 0.5


def _leftmost_red_column(frame):
    import numpy as np

    band = frame[80:150]
    red = (band[..., 2] > 150) & (band[..., 1] < 100) & (band[..., 0] < 100)
    columns = np.flatnonzero(red.any(axis=0))
    return int(columns[0]) if columns.size else -1


@pytest.mark.timeout(90)
def test_file_and_test_pattern_hold_their_frame_rates_within_2_percent_over_10_s(cluster, make_clip, tmp_path):
    clip = make_clip(frames=100, fps=25, size=(160, 120))  # 4 s, looped: the loop must not cost time
    manager, _ = cluster("w1")
    pattern, pattern_times = TestPattern("tp"), FrameLog("tp_times", tmp_path / "tp.json")
    video, video_times = VideoFile("file", path=str(clip), loop=True), FrameLog("file_times", tmp_path / "file.json")
    graph = cp.Graph()
    graph.add_edge(pattern, pattern_times)
    graph.add_edge(video, video_times)
    assert manager.commit_graph(graph, {"w1": ["tp", "tp_times", "file", "file_times"]})
    assert manager.start()
    time.sleep(10.5)
    assert manager.stop()
    assert manager.errors == []
    for path, fps in ((tmp_path / "tp.json", 30), (tmp_path / "file.json", 25)):
        seen = frame_log(path)
        assert [i for i, _, _ in seen] == list(range(len(seen)))
        stamps = [t for _, t, _ in seen]
        assert stamps[-1] - stamps[0] >= 10
        assert rate(stamps) == pytest.approx(fps, rel=0.02), path.name
        # and no stretch of it strays either: every second holds its share of frames
        first = stamps[0]
        per_second = [sum(1 for t in stamps if k <= t - first < k + 1) for k in range(10)]
        assert all(abs(n - fps) <= 0.02 * fps + 1 for n in per_second), per_second
