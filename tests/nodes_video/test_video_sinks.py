"""The recorder and the overlay run in-process through chimerapy.testing, on frames from the wire."""

import logging

import numpy as np
import pytest

import chimerapy as cp
from chimerapy.testing import NodeHarness, run_node
from chimerapy_nodes_video import Overlay, VideoRecorder
from chimerapy_nodes_video._frames import frame_chunk
from chimerapy_nodes_video.test_pattern import PatternPainter
from video_media import read_timestamps, read_video

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


def frames(count, fps, *, size=(320, 240), start=0):
    painter = PatternPainter(*size)
    return [frame_chunk(painter.paint(i, T0 + i / fps), T0 + i / fps, i) for i in range(start, start + count)]


def record(tmp_path, node, chunks, producer="cam"):
    with NodeHarness(node, directory=tmp_path) as harness:
        for chunk in chunks:
            harness.step({producer: chunk})
    return harness


# -- recorder -------------------------------------------------------------------------------------


def test_recorder_saves_every_frame_with_its_capture_time(tmp_path):
    from chimerapy_nodes_video import read_frame_code

    sent = frames(25, 25.0)
    record(tmp_path, VideoRecorder("rec", fps=25), sent, producer="any-name")
    video, rate = read_video(tmp_path / "video.mp4")
    assert rate == 25 and len(video) == 25
    assert [read_frame_code(f) for f in video] == list(range(25))
    rows = read_timestamps(tmp_path / "video.timestamps.csv")
    assert rows == [(i, pytest.approx(T0 + i / 25, abs=1e-6)) for i in range(25)]


def test_recorder_measures_the_frame_rate_when_not_given(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    record(tmp_path, VideoRecorder("rec", record_name="cam_1", measure_seconds=0.5), frames(40, 12.5))
    video, rate = read_video(tmp_path / "cam_1.mp4")
    assert rate == 12.5 and len(video) == 40
    assert len(read_timestamps(tmp_path / "cam_1.timestamps.csv")) == 40
    assert any("measured 12.5 fps" in r.getMessage() for r in caplog.records)


def test_recorder_stopped_before_measuring_saves_what_it_held(tmp_path):
    record(tmp_path, VideoRecorder("rec"), frames(5, 30.0))  # 5 frames: less than measure_seconds
    video, rate = read_video(tmp_path / "video.mp4")
    assert rate == 30 and len(video) == 5


def test_recorder_takes_any_image_record_and_gray_frames(tmp_path):
    chunks = []
    for i in range(6):
        chunk = cp.DataChunk()
        chunk.add("snapshot", np.full((48, 64), 40 * i, np.uint8), "image")
        chunk.add("timestamp", T0 + i / 10)
        chunks.append(chunk)
    record(tmp_path, VideoRecorder("rec", fps=10), chunks)
    video, _ = read_video(tmp_path / "video.mp4")
    assert [round(f.mean() / 40) for f in video] == list(range(6))


def test_recorder_starts_a_new_video_when_the_frame_size_changes(tmp_path, caplog):
    sent = frames(4, 10.0, size=(320, 240)) + frames(3, 10.0, size=(160, 120), start=4)
    record(tmp_path, VideoRecorder("rec", fps=10), sent)
    assert len(read_video(tmp_path / "video.mp4")[0]) == 4
    second, _ = read_video(tmp_path / "video.1.mp4")
    assert len(second) == 3 and second[0].shape == (120, 160, 3)
    assert any("recording continues in 'video.1'" in r.getMessage() for r in caplog.records)


def test_recorder_warns_once_about_inputs_without_images(tmp_path, caplog):
    record(tmp_path, VideoRecorder("rec", fps=10), [{"level": 0.5}, {"level": 0.7}], producer="mic")
    warnings = [r for r in caplog.records if "no image in the inputs" in r.getMessage()]
    assert len(warnings) == 1 and "mic" in warnings[0].getMessage()
    assert not (tmp_path / "video.mp4").exists()


def test_recorder_options_are_checked():
    with pytest.raises(cp.RecordError, match="not a valid file name"):
        VideoRecorder("rec", record_name="a/b")
    with pytest.raises(ValueError, match="fps must be a positive number"):
        VideoRecorder("rec", fps=0)
    with pytest.raises(ValueError, match="measure_seconds must be > 0"):
        VideoRecorder("rec", measure_seconds=0)


# -- overlay --------------------------------------------------------------------------------------


def detections_chunk(timestamp, boxes, label="face"):
    chunk = cp.DataChunk()
    chunk.add("detections", [{"box": box, "score": 0.9, "label": label} for box in boxes])
    chunk.add("timestamp", timestamp)
    return chunk


def red_columns(frame):
    """Columns where a red box edge (the palette colour of label 'r') was drawn."""
    return np.flatnonzero((frame[..., 2] > 200) & (frame[..., 1] < 60) & (frame[..., 0] < 60)).size


def test_overlay_puts_each_result_on_the_frame_it_was_computed_from():
    black = [frame_chunk(np.zeros((120, 160, 3), np.uint8), T0 + i / 10, i) for i in range(4)]
    for chunk in black:
        chunk.add("file_frame", 100 + chunk.get("frame_index")["value"])
    inputs = [
        {"cam": black[0], "ml": detections_chunk(T0, [[10, 10, 20, 20]])},
        {"cam": black[1]},  # no new result yet: the frame waits (max_delay is long)
        {"cam": black[2], "ml": detections_chunk(T0 + 0.2, [[50, 50, 20, 20]])},  # ML skipped frame 1
        {"cam": black[3], "ml": detections_chunk(T0 + 0.3, [])},
    ]
    out = run_node(Overlay("overlay", max_delay=60), inputs=inputs)
    assert [c.get("frame_index")["value"] for c in out] == [0, 1, 2]
    assert [c.get("file_frame")["value"] for c in out] == [100, 101, 102]  # other records pass on
    assert [c.get("timestamp")["value"] for c in out] == [T0, T0 + 0.1, T0 + 0.2]
    boxes = [[d["box"] for d in c.get("detections")["value"]] for c in out]
    assert boxes == [[[10, 10, 20, 20]], [[10, 10, 20, 20]], [[50, 50, 20, 20]]]
    drawn = [c.get("frame")["value"] for c in out]
    assert drawn[0][10:30, 10].any() and not drawn[0][50:70, 50].any()
    assert drawn[2][50:70, 50].any() and not drawn[2][10:30, 10].any()
    assert out[0].get("frame")["content-type"] == "image"


def test_overlay_drops_low_scores_and_warns_about_malformed_detections(caplog):
    frame = frame_chunk(np.zeros((60, 80, 3), np.uint8), T0, 0)
    result = cp.DataChunk()
    result.add("detections", [{"box": [1, 1, 5, 5], "score": 0.2}, {"box": [10, 10, 5, 5], "score": 0.8},
                              {"box": [1, 2]}, "junk"])
    result.add("timestamp", T0)
    (out,) = run_node(Overlay("overlay", min_score=0.5), inputs=[{"cam": frame, "ml": result}])
    assert out.get("detections")["value"] == [{"box": [10, 10, 5, 5], "score": 0.8}]
    assert any("malformed detections are not drawn" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "options, message",
    [({"max_delay": -1}, "max_delay must be a number >= 0"), ({"buffer": 0}, "buffer must be an int >= 1"),
     ({"thickness": 1.5}, "thickness must be an int >= 1")],
)
def test_overlay_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        Overlay("overlay", **options)
