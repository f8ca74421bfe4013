"""Each node in this process (chimerapy.testing) against real LSL outlets and inlets."""

from __future__ import annotations

import csv
import json
import time

import chimerapy as cp
import numpy as np
import pylsl
import pytest
from chimerapy.testing import NodeHarness
from chimerapy_nodes_lsl import ClockMap, LslInlet, LslOutlet
from chimerapy_nodes_lsl.formats import as_samples, format_of
from lsl_helpers import CHANNELS, SyntheticOutlet, expected_sample, lsl_to_wall, sample_index

pytestmark = pytest.mark.timeout(60)


def pull_until(harness: NodeHarness, count: int, timeout: float = 20.0) -> list[cp.DataChunk]:
    """Step the inlet until its chunks hold ``count`` samples."""
    chunks, got, deadline = [], 0, time.monotonic() + timeout
    while got < count and time.monotonic() < deadline:
        chunk = harness.step()
        if chunk is not None:
            chunks.append(chunk)
            got += len(chunk.get("timestamps")["value"])
    assert got >= count, f"only {got} of {count} samples arrived"
    return chunks


def values(chunks: list[cp.DataChunk], name: str) -> np.ndarray:
    return np.concatenate([np.asarray(c.get(name)["value"]) for c in chunks])


def test_inlet_emits_every_sample_with_manager_times_and_the_description_once(stream_name, tmp_path):
    source = SyntheticOutlet(stream_name, count=500, source_id="synthetic-1")
    inlet = LslInlet("eeg", stream=stream_name, type="EEG", record=True, record_name="eeg")
    with NodeHarness(inlet, directory=tmp_path) as harness:
        source.start()
        chunks = pull_until(harness, 500)
        source.join(10)
        lsl_to_manager = lsl_to_wall()  # this process is the "Manager"
    samples, times = values(chunks, "samples"), values(chunks, "timestamps")
    k = sample_index(samples)
    np.testing.assert_array_equal(k, np.arange(500))
    np.testing.assert_array_equal(samples, expected_sample(k))
    assert samples.dtype == np.float32 and samples.shape == (500, CHANNELS)
    np.testing.assert_allclose(times, source.times(k) + lsl_to_manager, atol=1e-3, rtol=0)
    np.testing.assert_array_equal(values(chunks, "lsl_timestamps"), source.times(k))
    assert [c.get("sample_index")["value"] for c in chunks] == list(
        np.cumsum([0] + [len(c.get("timestamps")["value"]) for c in chunks[:-1]]))
    first = chunks[0].get("description")["value"]
    assert (first["name"], first["type"], first["source_id"]) == (stream_name, "EEG", "synthetic-1")
    assert (first["channel_count"], first["channel_format"], first["nominal_rate"]) == (CHANNELS, "float32", 1000.0)
    assert first["channel_labels"] == [f"C{c}" for c in range(CHANNELS)]
    assert first["channel_units"] == ["microvolts"] * CHANNELS
    assert all("description" not in c for c in chunks[1:])
    assert chunks[0].get("rate")["value"] == 1000.0 and chunks[0].get("stream")["value"] == stream_name
    source.close()
    with open(tmp_path / "eeg.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["timestamp", "time", "lsl_time", *[f"C{c}" for c in range(CHANNELS)]]
    assert len(rows) == 500
    np.testing.assert_array_equal([float(r["time"]) for r in rows], times)
    np.testing.assert_array_equal([float(r["C3"]) for r in rows], samples[:, 3])
    described = json.loads((tmp_path / "eeg.stream.jsonl").read_text().splitlines()[0])["data"]
    assert described["channel_labels"] == first["channel_labels"]


def test_inlet_without_a_matching_stream_lists_the_streams_it_sees(stream_name):
    other = SyntheticOutlet(stream_name, count=1)
    inlet = LslInlet("eeg", stream="no-such-stream", resolve_timeout=0.5)
    with pytest.raises(cp.NodeError) as caught:
        NodeHarness(inlet).__enter__()
    text = caught.value.remote_traceback
    assert "LslStreamNotFoundError" in text and "no LSL stream with name 'no-such-stream'" in text
    assert f"name {stream_name!r} type 'EEG'" in text  # the one that is there
    other.close()


def test_inlet_reads_an_irregular_string_marker_stream(stream_name):
    info = pylsl.StreamInfo(stream_name, "Markers", 2, pylsl.IRREGULAR_RATE, "string", "")
    outlet = pylsl.StreamOutlet(info)
    markers = [["start", "ü"], ["", "stim, 2"], ["stop", "end"]]
    with NodeHarness(LslInlet("markers", type="Markers", stream=stream_name)) as harness:
        assert outlet.wait_for_consumers(10)
        stamps = [pylsl.local_clock() + i for i in range(3)]
        for marker, stamp in zip(markers, stamps):
            outlet.push_sample(marker, stamp)
        chunks = pull_until(harness, 3)
        lsl_to_manager = lsl_to_wall()
    samples = values(chunks, "samples")
    assert samples.dtype.kind == "U" and samples.tolist() == markers
    assert chunks[0].get("rate")["value"] == 0.0
    np.testing.assert_allclose(values(chunks, "timestamps"), np.array(stamps) + lsl_to_manager, atol=1e-3)


def test_outlet_publishes_arrays_with_their_format_rate_labels_and_times(stream_name):
    outlet = LslOutlet("out", stream=stream_name, type="EEG", source_id="cp-out", channel_labels=["x", "y", "z"])
    with NodeHarness(outlet) as harness:
        block = np.arange(30, dtype=np.int16).reshape(10, 3)
        start = time.time()
        harness.step({"src": {"samples": block, "rate": 250, "timestamp": start}})  # the outlet exists now
        (info,) = pylsl.resolve_byprop("name", stream_name, 1, 10)
        inlet = pylsl.StreamInlet(info)
        full = inlet.info(10)
        inlet.open_stream(10)
        harness.step({"src": {"samples": block + 100, "rate": 250, "timestamp": start + 0.04}})
        got, stamps = inlet.pull_chunk(timeout=10, max_samples=10, as_numpy=True)
        correction = inlet.time_correction(5)
        lsl_to_manager = lsl_to_wall()
    assert (full.channel_count(), full.channel_format(), full.nominal_srate()) == (3, pylsl.cf_int16, 250.0)
    assert (full.type(), full.source_id(), full.get_channel_labels()) == ("EEG", "cp-out", ["x", "y", "z"])
    np.testing.assert_array_equal(got, block + 100)
    expected = start + 0.04 + np.arange(10) / 250
    np.testing.assert_allclose(np.asarray(stamps) + correction + lsl_to_manager, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize(("second", "problem"), [
    ([1.0, 2.0], "has 2 channels; the stream has 1"),
    ("text", "the stream's format is double64"),
])
def test_outlet_refuses_a_value_that_changes_the_stream(stream_name, second, problem):
    with NodeHarness(LslOutlet("out", stream=stream_name)) as harness:
        harness.step({"src": {"v": 1.5}})
        with pytest.raises(cp.NodeError) as caught:
            harness.step({"src": {"v": second}})
        assert "LslFormatError" in caught.value.remote_traceback and problem in caught.value.remote_traceback


@pytest.mark.parametrize(("value", "shape", "fmt"), [
    (3, (1, 1), "int64"),
    (2.5, (1, 1), "double64"),
    ("go", (1, 1), "string"),
    (b"go", (1, 1), "string"),
    (["a", "b"], (1, 2), "string"),
    (np.zeros(4, np.float32), (1, 4), "float32"),
    (np.zeros((5, 2), np.uint8), (5, 2), "int16"),
    (np.zeros((5, 2), np.bool_), (5, 2), "int8"),
])
def test_values_become_samples_of_an_lsl_format(value, shape, fmt):
    samples = as_samples(value)
    assert samples.shape == shape and format_of(samples) == fmt


@pytest.mark.parametrize("value", [{"a": 1}, np.zeros((2, 2, 2)), [], np.zeros(3, np.complex64), [1, None]])
def test_values_lsl_cannot_carry_are_refused(value):
    from chimerapy_nodes_lsl import LslFormatError

    with pytest.raises(LslFormatError):
        format_of(as_samples(value))


def test_clock_map_uses_the_tightest_of_its_readings():
    readings = iter([0.0, 0.3, 1.0, 1.1, 2.0, 2.2, 3.0, 3.4, 4.0, 4.5] * 2)  # brackets 0.3, 0.1, 0.2, ...
    clock = ClockMap(lambda: 1000.0, lambda: next(readings))
    assert clock.offset() == pytest.approx(1000.0 - 1.05)
    np.testing.assert_allclose(clock.to_manager(np.array([1.0, 2.0]), correction=0.25), [1000.2, 1001.2])


def test_outlet_republishes_an_inlet_chunk_with_its_labels_units_and_times(stream_name):
    description = {"channel_labels": ["Fz", "Cz"], "channel_units": ["uV", "uV"], "nominal_rate": 500.0}
    stamps = time.time() + np.array([0.0, 0.002, 0.0041])  # per-sample times, not quite regular
    chunk = {"samples": np.ones((3, 2), np.float32), "timestamps": stamps, "rate": 500.0, "description": description}
    with NodeHarness(LslOutlet("out", stream=stream_name)) as harness:
        harness.step({"eeg": chunk})
        (info,) = pylsl.resolve_byprop("name", stream_name, 1, 10)
        inlet = pylsl.StreamInlet(info)
        full = inlet.info(10)
        inlet.open_stream(10)
        harness.step({"eeg": {**chunk, "samples": np.full((3, 2), 7, np.float32), "timestamps": stamps + 1}})
        got, times = inlet.pull_chunk(timeout=10, max_samples=3, as_numpy=True)
        correction = inlet.time_correction(5)
        lsl_to_manager = lsl_to_wall()
    assert (full.get_channel_labels(), full.get_channel_units()) == (["Fz", "Cz"], ["uV", "uV"])
    assert (full.channel_format(), full.nominal_srate()) == (pylsl.cf_float32, 500.0)
    np.testing.assert_array_equal(got, np.full((3, 2), 7, np.float32))
    np.testing.assert_allclose(np.asarray(times) + correction + lsl_to_manager, stamps + 1, atol=1e-3, rtol=0)


def test_inlet_records_a_stream_that_returns_with_other_channels_into_a_new_file(stream_name, tmp_path):
    def outlet(channels: int, labels: list[str]) -> pylsl.StreamOutlet:
        info = pylsl.StreamInfo(stream_name, "EEG", channels, 100, "float32", "amp")
        info.set_channel_labels(labels)
        return pylsl.StreamOutlet(info)

    inlet = LslInlet("eeg", stream=stream_name, record=True, record_name="eeg")
    first = outlet(2, ["a", "b"])
    with NodeHarness(inlet, directory=tmp_path) as harness:
        assert first.wait_for_consumers(10)
        first.push_chunk(np.zeros((5, 2), np.float32))
        chunks = pull_until(harness, 5)
        del first  # the device program stops, and starts again with three channels
        second = outlet(3, ["a", "b", "c"])
        deadline = time.monotonic() + 30
        while not second.have_consumers() and time.monotonic() < deadline:
            harness.step()  # notices the loss, then resolves the stream again
        assert second.have_consumers()
        second.push_chunk(np.ones((4, 3), np.float32))
        chunks += pull_until(harness, 4)
    shapes = [c.get("samples")["value"].shape for c in chunks]
    resumed = next(i for i, shape in enumerate(shapes) if shape[1] == 3)
    assert sum(n for n, _ in shapes[:resumed]) == 5 and {c for _, c in shapes[:resumed]} == {2}
    assert sum(n for n, _ in shapes[resumed:]) == 4 and {c for _, c in shapes[resumed:]} == {3}
    assert chunks[resumed].get("gap")["value"]["reconnects"] == 1
    assert chunks[resumed].get("description")["value"]["channel_count"] == 3
    assert sum("gap" in c for c in chunks) == 1
    assert (tmp_path / "eeg.csv").read_text().splitlines()[0] == "timestamp,time,lsl_time,a,b"
    assert (tmp_path / "eeg.1.csv").read_text().splitlines()[0] == "timestamp,time,lsl_time,a,b,c"
    assert len((tmp_path / "eeg.1.csv").read_text().splitlines()) == 5
