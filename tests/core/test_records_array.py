"""Array records: .npy stacks that np.load reads, a new file per dtype or shape, an index of
times, readable up to the last flush while still being written, and what is refused."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from chimerapy import RecordError
from chimerapy.records import Recorder
from chimerapy.records.array import HEADER_BYTES

pytestmark = pytest.mark.timeout(30)


def index(path):
    with open(path, newline="") as file:
        return [(row["file"], int(row["row"]), float(row["timestamp"])) for row in csv.DictReader(file)]


def test_arrays_are_stacked_per_dtype_and_shape_and_indexed_with_their_times(tmp_path):
    with Recorder(tmp_path) as recorder:
        for i in range(4):
            recorder.save_array("x", np.arange(6, dtype=np.float32).reshape(2, 3) + i, timestamp=10.0 + i)
        recorder.save_array("x", np.int16(7), timestamp=20.0)  # a numpy scalar: a 0-d array
        recorder.save_array("x", np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]), timestamp=21.0)
        recorder.save_array("x", np.ones((2, 3), np.float32), timestamp=22.0)  # back to the first layout
    first = np.load(tmp_path / "x.000000.npy")
    assert first.shape == (4, 2, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first[3], np.arange(6).reshape(2, 3) + 3)
    assert np.load(tmp_path / "x.000001.npy").tolist() == [7]
    assert np.load(tmp_path / "x.000002.npy")["b"].tolist() == [[2.5]]
    assert np.load(tmp_path / "x.000003.npy", mmap_mode="r").shape == (1, 2, 3)
    assert index(tmp_path / "x.arrays.csv") == [
        ("x.000000.npy", 0, 10.0), ("x.000000.npy", 1, 11.0), ("x.000000.npy", 2, 12.0),
        ("x.000000.npy", 3, 13.0), ("x.000001.npy", 0, 20.0), ("x.000002.npy", 0, 21.0),
        ("x.000003.npy", 0, 22.0),
    ]
    assert (tmp_path / "x.000000.npy").stat().st_size == HEADER_BYTES + 4 * 6 * 4


def test_a_stack_being_written_loads_up_to_its_last_flush(tmp_path):
    recorder = Recorder(tmp_path, flush_interval=0.05)
    try:
        recorder.save_array("live", np.zeros(5, np.uint8), timestamp=1.0)
        recorder.save_array("live", np.ones(5, np.uint8), timestamp=2.0)
        rows = tmp_path / "live.arrays.csv"
        deadline = time.monotonic() + 10
        while not (rows.exists() and len(index(rows)) == 2):  # the index reaches the disk last
            assert time.monotonic() < deadline, "the index was never flushed"
            time.sleep(0.02)
        stack = np.load(tmp_path / "live.000000.npy")  # still open: its header already counts both
        assert stack.tolist() == [[0] * 5, [1] * 5]
    finally:
        recorder.close()


def test_object_arrays_and_non_arrays_are_refused_naming_the_fix(tmp_path):
    with Recorder(tmp_path) as recorder:
        with pytest.raises(RecordError, match="holds Python objects.*save_json"):
            recorder.save_array("x", np.array([{"a": 1}], dtype=object))
        with pytest.raises(RecordError, match="must be a numpy array, not list"):
            recorder.save_array("x", [1, 2, 3])
        recorder.save_array("x", np.zeros(2))  # the record stays usable
    assert np.load(tmp_path / "x.000000.npy").shape == (1, 2)


def test_the_loader_reads_array_streams_and_both_exports_carry_them(tmp_path):
    pyxdf = pytest.importorskip("pyxdf")
    mcap_reader = pytest.importorskip("mcap.reader")
    import json

    import chimerapy as cp
    from chimerapy.cli.main import main
    from click.testing import CliRunner

    node = tmp_path / "session" / "w1" / "model"
    with Recorder(node) as recorder:
        for i in range(3):
            recorder.save_array("scores", np.array([i, 2 * i, 3 * i], np.float32), timestamp=50.0 + i)
            recorder.save_array("varying", np.arange(i + 1), timestamp=50.5 + i)  # the shape changes
    session = cp.open_session(tmp_path / "session")
    scores = session.stream("model", "scores")
    assert scores.kind == "array" and scores.count == 3 and scores.times.tolist() == [50.0, 51.0, 52.0]
    np.testing.assert_array_equal(scores.array_at(51.5), [1, 2, 3])
    assert [session.stream("model", "varying").array(i).tolist() for i in range(3)] == [[0], [0, 1], [0, 1, 2]]

    xdf, mcap = tmp_path / "s.xdf", tmp_path / "s.mcap"
    for target, kind in ((xdf, "xdf"), (mcap, "mcap")):
        result = CliRunner().invoke(main, ["export", str(tmp_path / "session"), "--to", kind, "-o", str(target)])
        assert result.exit_code == 0, result.output
    streams, _ = pyxdf.load_xdf(str(xdf), dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    np.testing.assert_array_equal(np.asarray(by_name["model/scores"]["time_series"]), [[0, 0, 0], [1, 2, 3], [2, 4, 6]])
    assert [json.loads(t[0]) for t in by_name["model/varying"]["time_series"]] == [[0], [0, 1], [0, 1, 2]]
    with mcap.open("rb") as file:
        messages = [json.loads(m.data) for _, channel, m in mcap_reader.make_reader(file).iter_messages()
                    if channel.topic == "/w1/model/scores"]
    assert [(m["timestamp"], m["data"], m["shape"]) for m in messages] == [
        (50.0 + i, [i, 2 * i, 3 * i], [3]) for i in range(3)
    ]
