"""ml.ocr in-process (the ``ocr`` extra): printed text read where it is, none in a blank frame."""

from __future__ import annotations

import importlib.util
import json
import os

import cv2
import numpy as np
import pytest
from chimerapy import NodeError
from chimerapy.testing import run_node
from chimerapy_nodes_ml import TextReader

pytestmark = pytest.mark.timeout(120)

installed = importlib.util.find_spec("rapidocr_onnxruntime") is not None
# the test extra installs it: in CI its absence is a failure, on a developer machine a skip
needs_ocr = pytest.mark.skipif(
    not installed and not os.environ.get("CI"),
    reason="needs the ocr extra: pip install 'chimerapy-nodes-ml[ocr]'",
)


@needs_ocr
def test_printed_text_is_read_with_its_box_and_a_blank_frame_holds_none():
    page = np.full((240, 640, 3), 255, np.uint8)
    cv2.putText(
        page,
        "HELLO CHIMERA 42",
        (40, 140),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.6,
        (0, 0, 0),
        3,
        cv2.LINE_AA,
    )
    read, blank = run_node(
        TextReader(),
        [
            {"cam": {"frame": page, "timestamp": 10.0, "frame_index": 4}},
            {"cam": {"frame": np.zeros((240, 320, 3), np.uint8), "timestamp": 11.0}},
        ],
    )
    texts = read.get("texts")["value"]
    assert " ".join(t["text"] for t in texts).replace(" ", "") == "HELLOCHIMERA42"
    for text in texts:
        x, y, w, h = text["box"]
        assert 30 <= x and x + w <= 560 and 90 <= y and y + h <= 160, text  # where it was printed
        assert 0.5 <= text["score"] <= 1 and len(text["points"]) == 4
    # the same results as detections, for video.overlay, labelled with the text
    assert [d["label"] for d in read.get("detections")["value"]] == [t["text"] for t in texts]
    assert read.get("timestamp")["value"] == 10.0 and read.get("frame_index")["value"] == 4
    assert blank.get("texts")["value"] == [] and blank.get("detections")["value"] == []


@pytest.mark.timeout(30)
def test_without_the_extra_the_node_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "rapidocr_onnxruntime" else real(name, *args),
    )
    with pytest.raises(NodeError) as caught:
        run_node(TextReader(), [{"cam": {"frame": np.zeros((8, 8, 3), np.uint8)}}])
    assert caught.value.phase == "prep"
    assert "pip install 'chimerapy-nodes-ml[ocr]'" in caught.value.remote_traceback


@needs_ocr
def test_texts_are_recorded_with_the_frames_time(tmp_path):
    page = np.full((240, 640, 3), 255, np.uint8)
    cv2.putText(page, "RECORD 7", (40, 140), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    (result,) = run_node(
        TextReader(), [{"cam": {"frame": page, "timestamp": 42.25, "frame_index": 9}}], directory=tmp_path
    )
    (line,) = [json.loads(text) for text in (tmp_path / "texts.jsonl").read_text().splitlines()]
    assert line["timestamp"] == 42.25 and line["data"]["frame_index"] == 9
    assert line["data"]["texts"] == result.get("texts")["value"]
    assert "".join(t["text"] for t in line["data"]["texts"]).replace(" ", "") == "RECORD7"
