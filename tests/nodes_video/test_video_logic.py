"""The pure parts of the video pack: pacing, frame lookup, rate estimation, result matching, drawing."""

import threading
import time

import numpy as np
import pytest

import chimerapy as cp
from chimerapy_nodes_video import draw_detections, read_frame_code
from chimerapy_nodes_video._frames import find_frame, frame_chunk, frame_time
from chimerapy_nodes_video._pacing import MAX_SLEEP, Pacer, check_fps
from chimerapy_nodes_video.overlay import ResultMatcher
from chimerapy_nodes_video.recorder import estimate_fps
from chimerapy_nodes_video.test_pattern import PatternPainter
from video_media import read_video

pytestmark = pytest.mark.timeout(30)


# -- pacing ---------------------------------------------------------------------------------------


def test_pacer_keeps_an_absolute_schedule_despite_slow_steps():
    pacer = Pacer(100.0)
    start = time.monotonic()
    for i in range(50):
        assert pacer.wait(lambda: True)
        time.sleep(0.004 if i % 2 else 0.008)  # work that would drift a sleep(period) loop by 30%
    elapsed = time.monotonic() - start
    assert 0.49 - 0.01 <= elapsed <= 0.49 + 0.03  # 49 periods, then the last step's work
    assert pacer.skipped == 0


def test_pacer_restarts_the_schedule_after_a_long_stall():
    pacer = Pacer(50.0, max_lag=0.1)
    pacer.wait(lambda: True)
    time.sleep(0.3)  # 15 periods late
    before = time.monotonic()
    for _ in range(3):
        pacer.wait(lambda: True)
    # no burst of 15 catch-up deadlines: after the first, the next ones are a period apart again
    assert time.monotonic() - before >= 0.019
    assert pacer.skipped >= 10


def test_pacer_stops_waiting_within_one_short_sleep():
    pacer = Pacer(0.2)  # a 5 s period
    assert pacer.wait(lambda: True)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    assert not pacer.wait(lambda: not stop.is_set())
    assert time.monotonic() - start < 0.1 + MAX_SLEEP + 0.05


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf"), "fast", None])
def test_check_fps_names_the_node(fps):
    with pytest.raises(ValueError, match="video.x 'n': fps must be a positive number"):
        check_fps(fps, "video.x 'n'")


# -- frames on the wire ---------------------------------------------------------------------------


def test_find_frame_takes_the_first_chunk_with_a_frame_whatever_its_producer():
    frame = np.zeros((4, 6, 3), np.uint8)
    other = cp.DataChunk()
    other.add("level", 0.5)
    chunks = {"mic": other, "cam-7": frame_chunk(frame, 12.5, 3)}
    found = find_frame(chunks)
    assert found.producer == "cam-7" and found.timestamp == 12.5 and found.record == "frame"
    assert found.chunk.get("frame_index")["value"] == 3
    assert find_frame({"mic": other}) is None


def test_find_frame_falls_back_to_any_image_record_when_asked():
    image = cp.DataChunk()
    image.add("snapshot", np.ones((4, 4), np.uint8), "image")
    image.produced_at = 99.0
    assert find_frame({"x": image}) is None
    found = find_frame({"x": image}, any_image=True)
    assert found.record == "snapshot" and found.timestamp == 99.0


def test_frame_time_of_a_chunk_built_by_hand_is_when_it_was_made():
    chunk = cp.DataChunk()
    chunk.add("frame", np.zeros((2, 2, 3), np.uint8), "image")
    assert frame_time(chunk) == chunk.created
    chunk.produced_at = chunk.created + 5.0
    assert frame_time(chunk) == chunk.created + 5.0


@pytest.mark.parametrize(
    "times, expected",
    [
        ([i / 30 for i in range(30)] + [1.003], 30.0),  # jitter: snapped to the whole rate
        ([i / 29.97 for i in range(60)], 30.0),
        ([i / 12.5 for i in range(20)], 12.5),
        ([0.0, 0.4, 0.8], 2.5),
        ([1.0], None),
        ([1.0, 1.0], None),
        # a 0.5 s stall, then a burst that catches up: neither skews the estimate
        ([i / 30 for i in range(10)] + [0.8 + i * 0.001 for i in range(6)] + [1.0 + i / 30 for i in range(20)], 30.0),
    ],
)
def test_estimate_fps(times, expected):
    assert estimate_fps(times) == expected


# -- matching results to frames -------------------------------------------------------------------


def matcher(**kwargs):
    options = {"max_delay": 0.25, "max_age": 1.0, "capacity": 8, **kwargs}
    return ResultMatcher(**options)


def test_a_frame_leaves_with_its_own_result_as_soon_as_that_result_arrives():
    m = matcher()
    m.add_result("ml", 0.9, [{"box": [0, 0, 1, 1], "label": "old"}])
    m.add_frame("f1", 1.0, now=0.0)
    assert m.release(now=0.01) == []  # the result for t=1.0 may still come
    m.add_result("ml", 1.0, [{"box": [1, 1, 2, 2], "label": "mine"}])
    assert m.release(now=0.02) == [("f1", [{"box": [1, 1, 2, 2], "label": "mine"}])]


def test_frames_the_ml_skipped_carry_the_most_recent_earlier_result():
    m = matcher()
    for i, t in enumerate([1.0, 1.1, 1.2, 1.3]):
        m.add_frame(f"f{i}", t, now=0.0)
    m.add_result("ml", 1.0, ["a"])
    m.add_result("ml", 1.3, ["d"])  # the ML skipped 1.1 and 1.2
    assert m.release(now=0.01) == [("f0", ["a"]), ("f1", ["a"]), ("f2", ["a"]), ("f3", ["d"])]


def test_a_frame_waits_at_most_max_delay_then_leaves_with_what_is_known():
    m = matcher(max_delay=0.25)
    m.add_result("ml", 0.5, ["earlier"])
    m.add_frame("f", 1.0, now=10.0)
    assert m.next_due() == pytest.approx(10.25)
    assert m.release(now=10.24) == []
    assert m.release(now=10.25) == [("f", ["earlier"])]
    assert m.next_due() is None


def test_without_any_result_frames_leave_after_max_delay_bare():
    m = matcher(max_delay=0.1)
    m.add_frame("f", 1.0, now=0.0)
    assert m.release(now=0.05) == []
    assert m.release(now=0.1) == [("f", [])]


def test_results_older_than_max_age_are_not_drawn():
    m = matcher(max_age=0.5)
    m.add_result("ml", 1.0, ["stale"])
    m.add_result("ml", 3.0, ["later"])
    m.add_frame("f", 2.0, now=0.0)
    assert m.release(now=0.0) == [("f", [])]


def test_out_of_order_results_are_matched_by_timestamp():
    m = matcher()
    m.add_frame("f1", 1.0, now=0.0)
    m.add_frame("f2", 2.0, now=0.0)
    m.add_result("ml", 2.0, ["two"])
    m.add_result("ml", 1.0, ["one"])
    assert m.release(now=0.0) == [("f1", ["one"]), ("f2", ["two"])]


def test_each_ml_producer_contributes_and_all_must_have_caught_up():
    m = matcher()
    m.add_frame("f", 1.0, now=0.0)
    m.add_result("faces", 1.0, ["face"])
    m.add_result("text", 0.8, ["word"])
    assert m.release(now=0.0) == []  # "text" may still send a result for t=1.0
    m.add_result("text", 1.2, ["later word"])
    assert m.release(now=0.0) == [("f", ["face", "word"])]


def test_a_full_buffer_lets_the_oldest_frame_go_and_release_keeps_order():
    m = matcher(capacity=2)
    for i in range(3):
        m.add_frame(f"f{i}", float(i), now=0.0)
    assert m.release(now=0.0) == [("f0", [])]
    assert len(m) == 2
    assert m.release(now=0.0, limit=1) == []
    assert [item for item, _ in m.release(now=0.0, everything=True)] == ["f1", "f2"]


def test_the_result_history_is_bounded():
    m = matcher()
    m.history = 4
    for t in range(10):
        m.add_result("ml", float(t), [t])
    assert m.match(9.0) == [9]
    assert m.match(5.5) == []  # results 0..5 were dropped


# -- drawing --------------------------------------------------------------------------------------


def test_draw_detections_draws_on_a_copy_and_leaves_the_input_alone():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame.setflags(write=False)  # as a received frame
    out = draw_detections(frame, [{"box": [40, 50, 30, 20], "score": 0.87, "label": "face"}], thickness=2)
    assert not frame.any() and out.flags.writeable and out.shape == frame.shape
    edge = out[50:70, 40]  # the box's left edge
    assert (edge.max(axis=1) > 200).all()
    assert not out[90:, :].any() and not out[60, 45:65].any()  # nothing below, inside stays clear
    assert out[35:50, 40:100].any()  # the label above the box


def test_draw_detections_keeps_labels_inside_the_frame_and_accepts_gray():
    frame = np.zeros((60, 80), np.uint8)
    out = draw_detections(frame, [{"box": [70.4, 0, 30, 30], "score": 1, "label": "a long label"}])
    assert out.shape == (60, 80, 3)
    assert out[:, 70].any()  # the box edge at the rounded x


# -- the test pattern's frame code ----------------------------------------------------------------


def test_the_frame_code_survives_h264(tmp_path):
    import av

    painter = PatternPainter(320, 240)
    numbers = [0, 1, 2, 77, 4095, 123456, 2**24 - 1]
    path = tmp_path / "codes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for n in numbers:
            for packet in stream.encode(av.VideoFrame.from_ndarray(painter.paint(n, 1e9 + n), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    frames, _ = read_video(path)
    assert [read_frame_code(f) for f in frames] == numbers


def test_the_frame_code_needs_room():
    assert read_frame_code(PatternPainter(120, 90).paint(5, 0.0)) is None
