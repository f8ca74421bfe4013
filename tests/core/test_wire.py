"""The data-plane wire format, without sockets."""

import json

import numpy as np
import pytest
from chimerapy import DataChunk, ProtocolError
from chimerapy.net import header_json, wire


def roundtrip(chunk, **kwargs):
    frames = wire.encode_chunk(chunk, seq=7, producer="cam", produced_at=12.5, **kwargs)
    # what crosses a socket is bytes: decode from copies, as a receiver would
    message = wire.decode([bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f for f in frames])
    return message


ARRAYS = [
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8),
    np.linspace(0, 1, 10, dtype=np.float32),
    np.arange(6, dtype=np.float64).reshape(2, 3).T,  # not contiguous
    np.array([True, False]),
    np.array(5, dtype=np.int64),  # zero-dimensional
    np.empty((0, 3), dtype=np.int16),  # empty
    np.array([1 + 2j], dtype=np.complex128),
    np.zeros(3, dtype=[("x", "<f4"), ("y", "<i2", (2,))]),  # structured
    np.array([1, 2], dtype=">u4"),  # big-endian
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_arrays_roundtrip_exactly(array):
    chunk = DataChunk()
    chunk.add("a", array)
    message = roundtrip(chunk)
    value = message.chunk.get("a")["value"]
    assert value.dtype == array.dtype and value.shape == array.shape
    np.testing.assert_array_equal(value, array)


def test_arrays_travel_outside_the_header_and_pickle():
    frame = np.full((480, 640, 3), 7, np.uint8)
    chunk = DataChunk()
    chunk.add("frame", frame, "image")
    frames = wire.encode_chunk(chunk, seq=0, producer="cam", produced_at=0.0)
    assert len(frames) == 2
    assert len(frames[0]) < 300  # the header stays small
    assert np.shares_memory(np.asarray(frames[1]), frame)  # sent without a copy


@pytest.mark.parametrize("value", [7, -2**70, 0.1, float("inf"), "é", True, None])
def test_plain_scalars_travel_inside_the_header_with_their_exact_type(value):
    chunk = DataChunk()
    chunk.add("v", value)
    frames = wire.encode_chunk(chunk, seq=0, producer="cam", produced_at=0.0)
    assert len(frames) == 1  # no pickle, no buffer
    got = roundtrip(chunk).chunk.get("v")["value"]
    assert type(got) is type(value) and got == value


def test_scalar_subclasses_and_long_strings_are_pickled_as_before():
    for value in (np.float64(0.5), np.int32(3), "x" * 5000):
        chunk = DataChunk()
        chunk.add("v", value)
        assert len(wire.encode_chunk(chunk, seq=0, producer="cam", produced_at=0.0)) == 2
        got = roundtrip(chunk).chunk.get("v")["value"]
        assert type(got) is type(value) and got == value


def test_nested_python_objects_and_nested_arrays():
    value = {"a": [1, 2.5, "x", None, (1, 2)], "arr": np.arange(5), "deep": {"b": {1, 2}}}
    chunk = DataChunk()
    chunk.add("obj", value)
    got = roundtrip(chunk).chunk.get("obj")["value"]
    assert got["a"] == value["a"] and got["deep"] == value["deep"]
    np.testing.assert_array_equal(got["arr"], value["arr"])


@pytest.mark.parametrize("value", [0, 0.0, "", [], {}, None, False, b""])
def test_falsy_values_survive(value):
    chunk = DataChunk()
    chunk.add("v", value)
    assert roundtrip(chunk).chunk.get("v")["value"] == value


def test_header_fields_and_ownership():
    chunk = DataChunk()
    chunk.add("x", 1, "other")
    chunk.get("x")["ownership"].append("upstream")
    message = roundtrip(chunk)
    assert (message.kind, message.seq, message.producer, message.produced_at) == ("d", 7, "cam", 12.5)
    record = message.chunk.get("x")
    assert record["content-type"] == "other"
    assert record["ownership"] == ["upstream", "cam"]
    assert message.chunk.producer == "cam" and message.chunk.seq == 7


def test_received_arrays_are_read_only_views():
    chunk = DataChunk()
    chunk.add("a", np.zeros(4))
    frames = [bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f
              for f in wire.encode_chunk(chunk, seq=0, producer="p", produced_at=0)]
    value = wire.decode(frames).chunk.get("a")["value"]
    with pytest.raises(ValueError):
        value[0] = 1


def test_end_marker():
    message = wire.decode(wire.encode_end(last_seq=41, producer="cam", produced_at=3.0))
    assert (message.kind, message.seq, message.chunk) == ("e", 41, None)


@pytest.mark.parametrize("frames", [
    [],
    [b"garbage"],
    [b"CPY1not json"],
    [b"CPY1[]"],
    [b'CPY1{"k":"d","seq":"x","p":"a","t":0,"r":[]}'],
    [b'CPY1{"k":"d","seq":1,"p":"a","t":0,"r":[{"n":"a","c":"other","o":[],"e":"nd","d":"<f8","s":[4],"f":[1,2]}]}', b"123"],
    [b'CPY1{"k":"d","seq":1,"p":"a","t":0,"r":[{"n":"a","c":"other","o":[],"e":"nd","d":"<f8","s":[1],"f":[1,5]}]}', b"12345678"],
    [b'CPY1{"k":"d","seq":1,"p":"a","t":0,"r":[{"n":"a","c":"other","o":[],"e":"pk","f":[1,2]}]}', b"not a pickle"],
    [b'CPY1{"k":"d","seq":1,"p":"a","t":0,"r":[{"n":"a","c":"movie","o":[],"e":"pk","f":[1,2]}]}', b""],
    [b'CPY1{"k":"z","seq":1,"p":"a","t":0,"r":[]}'],
    [b'CPY1{"k":"e","seq":1,"p":"a","t":0,"r":[]} '],  # trailing space
    [b'CPY1{"k":"e","seq":1,"p":"a","t":0,"r":[]}{}'],  # a second value
    [b"CPY1"],
    [b"CPY1" + b"[" * 200_000],  # nested past the recursion limit
])
def test_malformed_messages_raise_protocol_error(frames):
    with pytest.raises(ProtocolError):
        wire.decode(frames)


def test_unpicklable_value_names_the_record():
    chunk = DataChunk()
    chunk.add("handle", (lambda: None))
    with pytest.raises(ProtocolError, match="handle"):
        wire.encode_chunk(chunk, seq=0, producer="p", produced_at=0)


def test_image_encoder_hook_applies_to_images_only():
    chunk = DataChunk()
    chunk.add("frame", np.zeros((4, 4, 3), np.uint8), "image")
    chunk.add("other", np.zeros((4, 4, 3), np.uint8))
    frames = wire.encode_chunk(chunk, seq=0, producer="p", produced_at=0, image_encoder=lambda a: b"JPEG")
    message = wire.decode(frames, image_decoder=lambda view: np.ones((4, 4, 3), np.uint8))
    assert message.chunk.get("frame")["value"].sum() == 48
    assert message.chunk.get("other")["value"].sum() == 0


@pytest.mark.parametrize("value", [
    {"k": "d", "seq": 7, "p": "cam", "t": 1795957210.123456, "r": [{"n": "a", "o": ["x", "y"], "v": None}]},
    [1, -2.5, 1e300, 5e-324, float("nan"), float("inf"), True, False, None, "", "é\u2028\"\\\n", {"": []}],
    {"nested": {"deep": [[[[{"x": 0.1}]]]]}, "big": 2**70},
])
def test_header_json_writes_and_reads_what_the_standard_json_module_does(value):
    text = header_json.dumps(value)
    assert text == json.dumps(value, separators=(",", ":"))
    again = header_json.loads(text)
    assert json.dumps(again) == json.dumps(json.loads(text))


def test_header_json_refuses_what_is_not_one_json_value():
    for text in ["", " 1", "1 ", "1,2", "{", "[1]]", "nul"]:
        with pytest.raises(ValueError):
            header_json.loads(text)
    with pytest.raises(TypeError):
        header_json.dumps({"x": object()})
