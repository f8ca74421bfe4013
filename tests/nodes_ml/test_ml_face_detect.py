"""ml.face_detect in-process (chimerapy.testing): a real photograph, blank frames, formats."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from chimerapy import NodeError
from chimerapy.testing import NodeHarness, run_node
from chimerapy_nodes_ml import FaceDetect, ModelFileError
from ml_media import ASTRONAUT_FACE, astronaut, overlap

pytestmark = pytest.mark.timeout(60)


def frames(*images, start=100.0):
    """Inputs for run_node: a video chunk per image, frame_index 0, 1..., 30 fps from ``start``."""
    return [
        {"cam": {"frame": image, "timestamp": start + i / 30, "frame_index": i}}
        for i, image in enumerate(images)
    ]


def values(chunk):
    return {name: record["value"] for name, record in chunk.items()}


def test_finds_the_astronauts_face_and_nothing_in_a_blank_frame():
    photo = astronaut()
    found, blank = (
        values(c) for c in run_node(FaceDetect("faces"), frames(photo, np.zeros_like(photo)))
    )
    assert len(found["detections"]) == 1
    (face,) = found["detections"]
    assert face["label"] == "face" and 0.5 <= face["score"] < 1.0 and face["neighbors"] >= 5
    assert overlap(face["box"], ASTRONAUT_FACE) > 0.5, face["box"]
    # the result carries the frame's own capture time and index, as video.overlay matches them
    assert found["timestamp"] == 100.0 and found["frame_index"] == 0
    assert blank["detections"] == [] and blank["timestamp"] == pytest.approx(100 + 1 / 30)
    assert blank["frame_index"] == 1
    # and says how the node keeps up
    assert blank["skipped"] == 0 and blank["processing_fps"] > 0
    assert 0 < blank["processing_time"] < 10 and blank["latency"] > 0


def test_boxes_are_in_the_input_frames_pixels_when_the_node_shrinks_frames():
    big = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    (result,) = run_node(FaceDetect(max_width=512), frames(big))
    (face,) = result.get("detections")["value"]
    assert overlap(face["box"], tuple(2 * v for v in ASTRONAUT_FACE)) > 0.5, face["box"]


@pytest.mark.parametrize(
    "convert",
    [
        lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None],
        lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
    ],
    ids=["gray", "gray-1-channel", "bgra"],
)
def test_gray_and_bgra_frames_work_too(convert):
    (result,) = run_node(FaceDetect(), frames(convert(astronaut())))
    assert [overlap(f["box"], ASTRONAUT_FACE) > 0.5 for f in result.get("detections")["value"]] == [
        True
    ]


def test_the_first_chunk_with_a_frame_is_used_whatever_its_producer_is_called():
    with NodeHarness(FaceDetect()) as harness:
        result = harness.step(
            {"audio": {"level": -20.0}, "anything": {"frame": astronaut(), "timestamp": 5.0}}
        )
    assert result.get("timestamp")["value"] == 5.0 and len(result.get("detections")["value"]) == 1
    assert "frame_index" not in result  # the input had none


def test_inputs_without_a_frame_produce_nothing():
    assert run_node(FaceDetect(), [{"src": {"i": 1}}, {"src": {"i": 2}}]) == []


def test_a_frame_that_is_not_a_uint8_image_names_what_arrived():
    with pytest.raises(NodeError) as caught:
        run_node(FaceDetect(), frames(astronaut().astype(np.float32) / 255))
    assert "ModelInputError" in caught.value.remote_traceback
    assert "expects a uint8 image" in caught.value.remote_traceback
    assert "'frame' from 'cam' holds float32 (512, 512, 3)" in caught.value.remote_traceback


def test_a_missing_cascade_names_its_path(tmp_path):
    missing = tmp_path / "nope.xml"
    with pytest.raises(NodeError) as caught:
        run_node(FaceDetect(cascade=str(missing)), frames(astronaut()))
    assert caught.value.phase == "prep" and str(missing) in caught.value.remote_traceback
    with pytest.raises(
        ModelFileError, match="haarcascade_nose.xml.*does not exist; OpenCV ships"
    ) as error:
        from chimerapy_nodes_ml.face_detect import cascade_path

        cascade_path("haarcascade_nose.xml")
    assert error.value.path.endswith("haarcascade_nose.xml")


def test_another_shipped_cascade_by_name():
    (result,) = run_node(
        FaceDetect(cascade="haarcascade_frontalface_alt2.xml"), frames(astronaut())
    )
    assert [overlap(f["box"], ASTRONAUT_FACE) > 0.5 for f in result.get("detections")["value"]] == [
        True
    ]


@pytest.mark.parametrize(
    "option",
    [
        {"scale_factor": 1.0},
        {"min_neighbors": -1},
        {"min_size": 0},
        {"max_width": 8},
        {"threads": 0},
        {"cascade": ""},
    ],
)
def test_bad_options_are_refused_when_the_node_is_created(option):
    with pytest.raises(ValueError, match="ml.face_detect 'face_detect'"):
        FaceDetect(**option)


def test_detections_are_recorded_with_the_frames_times_unless_record_is_off(tmp_path):
    photo = astronaut()
    inputs = frames(photo, np.zeros_like(photo), start=1_700_000_000.0)
    outputs = run_node(FaceDetect("faces"), inputs, directory=tmp_path / "on")
    lines = [json.loads(line) for line in (tmp_path / "on" / "detections.jsonl").read_text().splitlines()]
    # one line per processed frame, stamped with the frame's capture time, not the time of detection
    assert [line["timestamp"] for line in lines] == [1_700_000_000.0, 1_700_000_000.0 + 1 / 30]
    assert [line["data"]["frame_index"] for line in lines] == [0, 1]
    assert [line["data"]["detections"] for line in lines] == [
        chunk.get("detections")["value"] for chunk in outputs
    ]
    assert len(lines[0]["data"]["detections"]) == 1 and lines[1]["data"]["detections"] == []
    run_node(FaceDetect("faces", record=False), inputs, directory=tmp_path / "off")
    assert not (tmp_path / "off").exists() or list((tmp_path / "off").iterdir()) == []


def test_record_must_be_a_bool():
    with pytest.raises(TypeError, match="record must be True or False"):
        FaceDetect(record="yes")
