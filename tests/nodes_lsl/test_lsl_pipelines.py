"""LSL on a real cluster: every sample of a 1 kHz stream recorded on the Manager's clock, an
outlet restarted mid-run, and markers published from a pipeline to an inlet made here."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import chimerapy as cp
import numpy as np
import pylsl
import pytest
from chimerapy_nodes_lsl import LslInlet, LslOutlet
from lsl_helpers import CHANNELS, SyntheticOutlet, expected_sample, lsl_to_wall, sample_index
from support.nodes import Collector, collected

LABELS = [f"C{c}" for c in range(CHANNELS)]


def recorded_rows(folder: Path, node: str, record: str) -> int:
    """Samples an inlet has recorded so far (its CSV under ``folder``, flushed about every second)."""
    found = sorted(Path(folder).glob(f"**/{node}/{record}.csv"))
    if not found:
        return 0
    with open(found[-1], newline="") as file:
        return max(sum(1 for _ in file) - 1, 0)


def wait_for_rows(folder: Path, node: str, record: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while recorded_rows(folder, node, record) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert recorded_rows(folder, node, record) == count


def read_recording(logdir: Path, node: str, record: str) -> dict[str, np.ndarray]:
    """The collected ``<record>.csv`` of ``node`` in the session archive, by column."""
    (path,) = sorted(Path(logdir).glob(f"**/{node}/{record}.csv"))
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    return {column: np.array([float(row[column]) for row in rows]) for column in rows[0]}


def check_stream_recorded(seconds: float, cluster, stream_name: str, tmp_path: Path) -> None:
    """A SyntheticOutlet of ``seconds`` at 1 kHz x 8 channels -> lsl.inlet (recording) -> sink."""
    count = round(seconds * 1000)
    manager, (worker,) = cluster("w1")
    inlet = LslInlet("eeg", stream=stream_name, type="EEG", record=True, record_name="eeg")
    sink = Collector("sink", tmp_path / "sink")
    graph = cp.Graph()
    graph.add_edge(inlet, sink)
    source = SyntheticOutlet(stream_name, count=count)
    try:
        assert manager.commit_graph(graph, {"w1": ["eeg", "sink"]})
        assert manager.start()
        source.start()  # once the inlet is connected: every sample is pushed to it
        offset = lsl_to_wall()
        source.join(seconds + 30)
        wait_for_rows(worker.tempdir, "eeg", "eeg", count, timeout=30)
        assert manager.stop()
    finally:
        source.close()
    assert manager.errors == [], [error.remote_traceback for error in manager.errors]
    assert abs(lsl_to_wall() - offset) < 2e-4  # the two clocks kept their offset meanwhile
    recording = read_recording(tmp_path / "runs", "eeg", "eeg")
    samples = np.stack([recording[label] for label in LABELS], axis=1)
    k = sample_index(samples)
    np.testing.assert_array_equal(k, np.arange(count))  # none missing, none twice, in order
    np.testing.assert_array_equal(samples, expected_sample(k))
    expected = source.times(k) + offset  # the outlet's stamps mapped into Manager time
    error = np.abs(recording["time"] - expected)
    assert error.max() < 1e-3, f"recorded times off by up to {error.max() * 1e3:.3f} ms"
    np.testing.assert_array_equal(recording["lsl_time"], source.times(k))
    # the sink got the same samples and times over the data plane
    chunks = [values for producer, _, values, _ in collected(tmp_path / "sink") if producer == "eeg"]
    np.testing.assert_array_equal(np.concatenate([c["samples"] for c in chunks]), expected_sample(np.arange(count)))
    np.testing.assert_array_equal(np.concatenate([c["timestamps"] for c in chunks]), recording["time"])
    assert chunks[0]["description"]["channel_labels"] == LABELS


@pytest.mark.timeout(120)
def test_a_1khz_stream_is_recorded_whole_on_the_manager_clock(cluster, stream_name, tmp_path):
    check_stream_recorded(5.0, cluster, stream_name, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_1khz_stream_is_recorded_whole_for_a_minute(cluster, stream_name, tmp_path):
    check_stream_recorded(60.0, cluster, stream_name, tmp_path)


@pytest.mark.timeout(120)
def test_an_outlet_restarted_mid_run_is_read_again_and_the_gap_reported(cluster, stream_name, tmp_path):
    manager, (worker,) = cluster("w1")
    inlet = LslInlet("eeg", stream=stream_name, record=True, record_name="eeg")
    sink = Collector("sink", tmp_path / "sink")
    graph = cp.Graph()
    graph.add_edge(inlet, sink)
    first = SyntheticOutlet(stream_name, count=500, source_id="amp-1")
    second = None
    try:
        assert manager.commit_graph(graph, {"w1": ["eeg", "sink"]})
        assert manager.start()
        first.start()
        first.join(30)
        wait_for_rows(worker.tempdir, "eeg", "eeg", 500, timeout=30)
        first.close()  # the device's program stops ...
        second = SyntheticOutlet(stream_name, count=500, source_id="amp-1", first=5000)  # ... and starts again
        second.start()  # returns once the inlet has found the new outlet
        second.join(30)
        wait_for_rows(worker.tempdir, "eeg", "eeg", 1000, timeout=30)
        assert manager.stop()
    finally:
        first.close()
        if second is not None:
            second.close()
    assert manager.errors == [], [error.remote_traceback for error in manager.errors]
    offset = lsl_to_wall()
    chunks = [values for producer, _, values, _ in collected(tmp_path / "sink") if producer == "eeg"]
    k = sample_index(np.concatenate([c["samples"] for c in chunks]))
    np.testing.assert_array_equal(k, np.r_[0:500, 5000:5500])
    gaps = [c["gap"] for c in chunks if "gap" in c]
    assert len(gaps) == 1
    (gap,) = gaps
    resumed = next(i for i, c in enumerate(chunks) if "gap" in c)
    assert sample_index(chunks[resumed]["samples"])[0] == 5000 and "description" in chunks[resumed]
    assert gap["reconnects"] == 1
    assert gap["last_sample"] == pytest.approx(first.times(np.array([499]))[0] + offset, abs=1e-3)
    assert gap["first_sample"] == pytest.approx(second.times(np.array([5000]))[0] + offset, abs=1e-3)
    assert gap["seconds"] == pytest.approx(gap["first_sample"] - gap["last_sample"])
    assert gap["missing"] == round(gap["seconds"] * 1000) - 1 and gap["missing"] > 0
    assert gap["last_sample"] < gap["lost_at"] < gap["first_sample"]
    (gaps_file,) = sorted((tmp_path / "runs").glob("**/eeg/eeg.gaps.jsonl"))
    assert json.loads(gaps_file.read_text())["data"]["missing"] == gap["missing"]
    assert len(read_recording(tmp_path / "runs", "eeg", "eeg")["time"]) == 1000


class MarkerSource(cp.Node):
    """Emits the string "marker <i> <Manager time>" every 20 ms."""

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(0.02)
        self.i += 1
        return f"marker {self.i} ü {self.now():.6f}"


@pytest.mark.timeout(120)
def test_markers_round_trip_through_an_outlet_to_an_inlet_made_here(cluster, stream_name):
    manager, _ = cluster("w1")
    outlet = LslOutlet("to_lsl", stream=stream_name, type="Markers", source_id="cp-markers")
    graph = cp.Graph()
    graph.add_edge(MarkerSource("markers"), outlet)
    assert manager.commit_graph(graph, {"w1": ["markers", "to_lsl"]})
    assert manager.start()
    try:
        (info,) = pylsl.resolve_byprop("name", stream_name, 1, 30)
        inlet = pylsl.StreamInlet(info)
        full = inlet.info(10)
        inlet.open_stream(10)
        received, stamps = [], []
        deadline = time.monotonic() + 30
        while len(received) < 20 and time.monotonic() < deadline:
            values, times = inlet.pull_chunk(timeout=1.0)
            received += [sample[0] for sample in values]
            stamps += times
        correction = inlet.time_correction(5)
        inlet.close_stream()
    finally:
        assert manager.stop()
    assert manager.errors == [], [error.remote_traceback for error in manager.errors]
    assert (full.type(), full.source_id(), full.channel_count()) == ("Markers", "cp-markers", 1)
    assert (full.channel_format(), full.nominal_srate()) == (pylsl.cf_string, 0.0)
    assert len(received) >= 20
    numbers = [int(text.split()[1]) for text in received]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # consecutive: none lost
    assert all(text.split()[2] == "ü" for text in received)
    made = np.array([float(text.split()[3]) for text in received])  # when the source made each
    published = np.array(stamps) + correction + lsl_to_wall()
    assert np.all(published - made > -5e-4) and np.all(published - made < 2e-3)  # clock noise: 0.1 ms
