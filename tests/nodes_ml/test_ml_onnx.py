"""ml.onnx in-process on small models built with onnx.helper: numbers, preprocessing, errors."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests build their models with the onnx package")
from chimerapy import NodeError
from chimerapy.testing import run_node
from chimerapy_nodes_ml import OnnxModel
from onnx import TensorProto, helper, numpy_helper

pytestmark = pytest.mark.timeout(60)

W = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
B = np.array([0.5, -1.0], np.float32)


def save(path, nodes, inputs, outputs, initializers=()):
    """Write a model of ``nodes`` (opset 13, IR 8: what any ONNX Runtime >= 1.16 loads)."""
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def tensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture
def linear(tmp_path):
    """y = x @ W + B, x float32 [batch, 3]."""
    return save(
        tmp_path / "linear.onnx",
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["y"]),
        ],
        [tensor("x", TensorProto.FLOAT, ["batch", 3])],
        [tensor("y", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )


@pytest.fixture
def channel_means(tmp_path):
    """means = the mean of each channel of img float32 [1, 3, 4, 6] (NCHW), and its maximum."""
    return save(
        tmp_path / "means.onnx",
        [
            helper.make_node("ReduceMean", ["img"], ["means"], axes=[2, 3], keepdims=0),
            helper.make_node("ReduceMax", ["img"], ["peak"], keepdims=0),
        ],
        [tensor("img", TensorProto.FLOAT, [1, 3, 4, 6])],
        [tensor("means", TensorProto.FLOAT, [1, 3]), tensor("peak", TensorProto.FLOAT, [])],
    )


def one(node, records, producer="src"):
    (chunk,) = run_node(node, [{producer: records}])
    return {name: record["value"] for name, record in chunk.items()}


def test_a_linear_model_gives_the_expected_numbers_for_an_array_record(linear):
    x = np.array([1.0, -2.0, 0.5])  # float64, no batch axis: cast and batched as the model wants
    out = one(OnnxModel(path=linear, input_record="x"), {"x": x, "timestamp": 12.5})
    np.testing.assert_allclose(out["y"], [x @ W + B], rtol=1e-6)
    assert out["y"].dtype == np.float32 and out["y"].shape == (1, 2)
    assert out["timestamp"] == 12.5 and out["skipped"] == 0 and "processing_fps" in out
    batch = np.arange(12, dtype=np.float32).reshape(4, 3)  # a whole batch passes as it is
    np.testing.assert_allclose(
        one(OnnxModel(path=linear, input_record="x"), {"x": batch})["y"], batch @ W + B
    )


def test_an_image_is_resized_converted_scaled_and_normalised(channel_means):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:] = (10, 20, 30)  # BGR
    frame[0, 0] = (255, 255, 255)  # one bright pixel: gone after shrinking to 6x4
    node = OnnxModel(path=channel_means, size=[6, 4], mean=0.5, std=[0.25, 0.5, 1.0])
    out = one(node, {"frame": frame, "timestamp": 3.0, "frame_index": 9}, producer="cam")
    rgb = np.array([30, 20, 10]) / 255
    np.testing.assert_allclose(out["means"], [(rgb - 0.5) / [0.25, 0.5, 1.0]], rtol=1e-3)
    assert out["timestamp"] == 3.0 and out["frame_index"] == 9
    bgr = one(OnnxModel(path=channel_means, size=[6, 4], color="bgr", scale=1.0), {"frame": frame})
    np.testing.assert_allclose(bgr["means"], [[10, 20, 30]], rtol=1e-3)


def test_nhwc_and_gray_layouts(tmp_path):
    nhwc = save(
        tmp_path / "nhwc.onnx",
        [helper.make_node("ReduceMean", ["img"], ["means"], axes=[1, 2], keepdims=0)],
        [tensor("img", TensorProto.FLOAT, [1, "h", "w", 3])],
        [tensor("means", TensorProto.FLOAT, [1, 3])],
    )
    frame = np.full((8, 8, 3), (0, 51, 255), np.uint8)
    np.testing.assert_allclose(
        one(OnnxModel(path=nhwc, layout="nhwc"), {"frame": frame})["means"],
        [[1.0, 0.2, 0.0]],
        rtol=1e-5,
    )
    gray = save(
        tmp_path / "gray.onnx",
        [helper.make_node("Identity", ["img"], ["same"])],
        [tensor("img", TensorProto.FLOAT, [1, 1, 2, 2])],
        [tensor("same", TensorProto.FLOAT, [1, 1, 2, 2])],
    )
    out = one(
        OnnxModel(path=gray, color="gray", scale=1.0), {"frame": np.full((2, 2, 3), 100, np.uint8)}
    )
    np.testing.assert_allclose(out["same"], np.full((1, 1, 2, 2), 100.0))


def test_a_shape_mismatch_names_the_models_input_and_what_arrived(channel_means):
    with pytest.raises(NodeError) as caught:
        one(
            OnnxModel(path=channel_means),
            {"frame": np.zeros((480, 640, 3), np.uint8)},
            producer="cam",
        )
    text = caught.value.remote_traceback
    assert (
        "ModelInputError" in text and "the model expects input 'img' float32 [1, 3, 4, 6]" in text
    )
    assert (
        "got float32 (1, 3, 480, 640)" in text
        and "from uint8 (480, 640, 3) from record 'frame' of 'cam'" in text
    )
    assert "check size=" in text


def test_a_layout_mismatch_and_a_rank_mismatch_are_named(channel_means, linear):
    with pytest.raises(NodeError, match="step") as caught:
        one(
            OnnxModel(path=channel_means, size=[6, 4], layout="nhwc"),
            {"frame": np.zeros((4, 6, 3), np.uint8)},
        )
    assert (
        "got float32 (1, 4, 6, 3)" in caught.value.remote_traceback
        and "NHWC" in caught.value.remote_traceback
    )
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=linear, input_record="x"), {"x": np.zeros((2, 2, 3), np.float32)})
    assert (
        "expects input 'x' float32 ['batch', 3], got float32 (2, 2, 3)"
        in caught.value.remote_traceback
    )


def test_floats_are_never_cast_silently_to_an_integer_input(tmp_path):
    ints = save(
        tmp_path / "ints.onnx",
        [helper.make_node("Identity", ["ids"], ["same"])],
        [tensor("ids", TensorProto.INT64, [3])],
        [tensor("same", TensorProto.INT64, [3])],
    )
    assert one(OnnxModel(path=ints, input_record="ids"), {"ids": np.array([1, 2, 3], np.int32)})[
        "same"
    ].tolist() == [1, 2, 3]
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=ints, input_record="ids"), {"ids": np.array([1.5, 2.0, 3.0])})
    assert "input 'ids' int64 [3] cannot take float64 (3,)" in caught.value.remote_traceback


def test_input_names_are_checked_when_the_model_loads(tmp_path, linear):
    two = save(
        tmp_path / "two.onnx",
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        [tensor("a", TensorProto.FLOAT, [2]), tensor("b", TensorProto.FLOAT, [2])],
        [tensor("sum", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=two, input_record="x"), {"x": np.zeros(2, np.float32)})
    assert caught.value.phase == "prep"
    assert (
        "takes 2 input(s): 'a' float32 [2], 'b' float32 [2]; ml.onnx feeds one input"
        in caught.value.remote_traceback
    )
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=linear, input_record="x", input_name="input"), {"x": np.zeros(3, np.float32)})
    assert (
        "takes 1 input(s): 'x' float32 ['batch', 3]; ml.onnx feeds input_name='input'"
        in caught.value.remote_traceback
    )


def test_a_missing_or_broken_model_file_names_the_path(tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=str(missing)), {"frame": np.zeros((4, 4, 3), np.uint8)})
    assert "ModelFileError" in caught.value.remote_traceback
    assert f"model file {str(missing)!r} does not exist" in caught.value.remote_traceback
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(NodeError) as caught:
        one(OnnxModel(path=str(broken)), {"frame": np.zeros((4, 4, 3), np.uint8)})
    assert f"{str(broken)!r} cannot be loaded as an ONNX model" in caught.value.remote_traceback


def test_an_output_named_like_a_node_record_is_renamed(tmp_path):
    clash = save(
        tmp_path / "clash.onnx",
        [helper.make_node("Identity", ["x"], ["timestamp"])],
        [tensor("x", TensorProto.FLOAT, [1])],
        [tensor("timestamp", TensorProto.FLOAT, [1])],
    )
    out = one(
        OnnxModel(path=clash, input_record="x"), {"x": np.array([42.0], np.float32), "timestamp": 7.0}
    )
    assert out["timestamp"] == 7.0 and out["output:timestamp"].tolist() == [42.0]


def test_inputs_without_the_record_produce_nothing(linear):
    assert run_node(OnnxModel(path=linear, input_record="x"), [{"src": {"y": np.zeros(3)}}]) == []


@pytest.mark.parametrize(
    "option",
    [
        {"path": ""},
        {"path": "m.onnx", "layout": "chw"},
        {"path": "m.onnx", "color": "hsv"},
        {"path": "m.onnx", "size": [224]},
        {"path": "m.onnx", "std": [1, 0]},
        {"path": "m.onnx", "mean": "x"},
    ],
)
def test_bad_options_are_refused_when_the_node_is_created(option):
    with pytest.raises(ValueError, match="ml.onnx 'onnx'"):
        OnnxModel(**option)


def test_outputs_are_recorded_as_arrays_with_their_inputs_times_unless_record_is_off(linear, tmp_path):
    inputs = [{"src": {"x": np.array([i, 1.0, -i], np.float32), "timestamp": 500.0 + i}} for i in range(4)]
    outputs = run_node(OnnxModel(path=linear, input_record="x"), inputs, directory=tmp_path / "on")
    stacked = np.load(tmp_path / "on" / "y.000000.npy")
    np.testing.assert_array_equal(stacked, np.stack([chunk.get("y")["value"] for chunk in outputs]))
    assert stacked.shape == (4, 1, 2) and stacked.dtype == np.float32
    index = (tmp_path / "on" / "y.arrays.csv").read_text().splitlines()
    assert index == ["file,row,timestamp"] + [f"y.000000.npy,{i},{500.0 + i}" for i in range(4)]
    run_node(OnnxModel(path=linear, input_record="x", record=False), inputs, directory=tmp_path / "off")
    assert not (tmp_path / "off").exists() or list((tmp_path / "off").iterdir()) == []


def test_a_record_name_given_to_record_points_to_input_record(linear):
    with pytest.raises(TypeError, match=r"record must be True or False.*input_record='x'"):
        OnnxModel(path=linear, record="x")
