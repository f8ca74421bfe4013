"""Recorder: tabular, image, JSON and text records; bad input; writer failures; lifecycle."""

from __future__ import annotations

import csv
import inspect
import itertools
import json
import logging
import threading
import time
from pathlib import Path

import av
import chimerapy.records
import numpy as np
import pytest
from chimerapy.errors import RecordError, StateError
from chimerapy.records import Recorder
from chimerapy.records import recorder as recorder_module
from chimerapy.records.image import encode_png
from chimerapy.records.naming import check_name
from chimerapy.records.tabular import TabularWriter
from chimerapy.records.video import VideoWriter

T0 = 1_700_000_000.0


@pytest.fixture
def make_recorder(tmp_path):
    """A factory of Recorders (default directory ``tmp_path/rec``), all closed at teardown."""
    made: list[Recorder] = []

    def make(directory: Path | None = None, **kwargs) -> Recorder:
        made.append(Recorder(directory or tmp_path / "rec", **kwargs))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as file:
        return list(csv.reader(file))


# -- the public interface --------------------------------------------------------------------


def test_public_interface_is_pinned():
    assert chimerapy.records.__all__ == ["Recorder"]
    expected = {
        "__init__": ["self", "directory", "clock", "on_error", "flush_interval"],
        "save_video": ["self", "name", "frame", "fps", "timestamp", "timing"],
        "save_audio": ["self", "name", "samples", "rate", "channels", "timestamp"],
        "save_tabular": ["self", "name", "row", "timestamp"],
        "save_image": ["self", "name", "image", "timestamp"],
        "save_json": ["self", "name", "obj", "timestamp"],
        "save_text": ["self", "name", "text", "timestamp"],
        "close": ["self", "timeout"],
        "stats": ["self"],
        "files": ["self"],
    }
    for method, parameters in expected.items():
        assert list(inspect.signature(getattr(Recorder, method)).parameters) == parameters
    assert inspect.signature(Recorder.close).parameters["timeout"].default == 10.0


# -- what each kind writes -------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_tabular_rows_are_written_exactly_with_a_timestamp_column(make_recorder, tmp_path):
    recorder = make_recorder()
    expected = []
    for i in range(100):  # 10 s at 10 Hz
        row = {"i": i, "x": i / 7, "label": f"row, \"{i}\"", "ok": i % 2 == 0}
        if i % 2:
            row = dict(reversed(row.items()))  # any key order: the header's order is kept
        recorder.save_tabular("sensor", row, timestamp=T0 + i / 10)
        expected.append([repr(T0 + i / 10), str(i), repr(i / 7), f"row, \"{i}\"", str(i % 2 == 0)])
    recorder.save_tabular("numpy", {"a": np.float64(0.1), "b": np.int32(3), "c": None})
    recorder.close()
    rows = read_csv(tmp_path / "rec" / "sensor.csv")
    assert rows[0] == ["timestamp", "i", "x", "label", "ok"]
    assert rows[1:] == expected
    assert read_csv(tmp_path / "rec" / "numpy.csv")[1][1:] == ["0.1", "3", ""]


@pytest.mark.timeout(30)
def test_tabular_takes_pandas_dataframes_and_series(make_recorder, tmp_path):
    pd = pytest.importorskip("pandas")
    recorder = make_recorder()
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, None, 2.5], "c": ["x", "y", None]})
    recorder.save_tabular("table", frame, timestamp=T0)
    recorder.save_tabular("table", pd.Series({"c": "z", "a": 4, "b": 1.0}), timestamp=T0 + 1)
    recorder.save_tabular("table", {"a": 5, "b": 2.0, "c": "w"}, timestamp=T0 + 2)
    recorder.close()
    read = pd.read_csv(tmp_path / "rec" / "table.csv")
    assert list(read.columns) == ["timestamp", "a", "b", "c"]
    assert read["a"].tolist() == [1, 2, 3, 4, 5]
    assert read["timestamp"].tolist() == [T0, T0, T0, T0 + 1, T0 + 2]
    assert read["b"].isna().tolist() == [False, True, False, False, False]
    assert recorder.stats()["table"]["written"] == 5


@pytest.mark.timeout(30)
def test_images_become_numbered_pngs_with_timestamps(make_recorder, tmp_path):
    recorder = make_recorder()
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, (31, 47, 3), dtype=np.uint8),  # BGR, odd sizes
        rng.integers(0, 256, (20, 10), dtype=np.uint8),  # gray
        rng.integers(0, 256, (8, 9, 4), dtype=np.uint8),  # BGRA
        rng.integers(0, 65536, (12, 16), dtype=np.uint16),  # 16-bit depth
    ]
    for i, image in enumerate(images):
        recorder.save_image("snap", image, timestamp=T0 + i)
        image[:] = 0  # the Recorder owns a copy
    recorder.close()
    folder = tmp_path / "rec" / "snap"
    names = [f"{i}.png" for i in range(4)]
    assert sorted(p.name for p in folder.iterdir()) == names + ["timestamps.csv"]
    assert read_csv(folder / "timestamps.csv")[1:] == [[n, repr(T0 + i)] for i, n in enumerate(names)]
    rng = np.random.default_rng(1)
    originals = [
        rng.integers(0, 256, (31, 47, 3), dtype=np.uint8),
        rng.integers(0, 256, (20, 10), dtype=np.uint8),
        rng.integers(0, 256, (8, 9, 4), dtype=np.uint8),
        rng.integers(0, 65536, (12, 16), dtype=np.uint16),
    ]
    with av.open(str(folder / names[0])) as container:  # PyAV decodes RGB PNG: BGR order kept
        frame = next(container.decode(video=0))
    assert np.array_equal(frame.to_ndarray(format="bgr24"), originals[0])
    cv2 = pytest.importorskip("cv2")
    for name, original in zip(names, originals):
        assert np.array_equal(cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED), original)


def test_png_encoder_round_trips_through_pyav():
    image = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5
    path_bytes = encode_png(image)
    assert path_bytes.startswith(b"\x89PNG\r\n\x1a\n")
    codec = av.CodecContext.create("png", "r")
    (frame,) = codec.decode(av.Packet(path_bytes))
    assert np.array_equal(frame.to_ndarray(format="bgr24"), image)


@pytest.mark.timeout(30)
def test_json_lines_hold_each_object_as_it_was_at_the_call(make_recorder, tmp_path):
    recorder = make_recorder()
    objects = [
        {"n": 1, "nested": {"list": [1, 2.5, None, True]}, "text": "naïve ✓"},
        [np.arange(3), np.float32(0.5), np.int64(7)],
        "just a string",
    ]
    state = {"count": 0}
    for i, obj in enumerate(objects):
        recorder.save_json("events", obj, timestamp=T0 + i)
    recorder.save_json("events", state, timestamp=T0 + 3)
    state["count"] = 99  # serialised at the call: the change is not recorded
    recorder.close()
    lines = (tmp_path / "rec" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"timestamp": T0, "data": objects[0]},
        {"timestamp": T0 + 1, "data": [[0, 1, 2], 0.5, 7]},
        {"timestamp": T0 + 2, "data": "just a string"},
        {"timestamp": T0 + 3, "data": {"count": 0}},
    ]


@pytest.mark.timeout(30)
def test_text_is_appended_as_given_with_byte_offsets(make_recorder, tmp_path):
    recorder = make_recorder()
    pieces = ["first line\n", "é partial ", "→ end\n"]
    for i, piece in enumerate(pieces):
        recorder.save_text("log", piece, timestamp=T0 + i)
    recorder.close()
    data = (tmp_path / "rec" / "log.txt").read_bytes()
    assert data.decode("utf-8") == "".join(pieces)
    rows = read_csv(tmp_path / "rec" / "log.timestamps.csv")
    assert rows[0] == ["byte_offset", "timestamp"]
    offsets = [int(row[0]) for row in rows[1:]] + [len(data)]
    assert [data[a:b].decode() for a, b in itertools.pairwise(offsets)] == pieces
    assert [float(row[1]) for row in rows[1:]] == [T0, T0 + 1, T0 + 2]


@pytest.mark.timeout(30)
def test_default_timestamp_is_the_clock_at_the_call(make_recorder, tmp_path):
    ticks = iter([100.0, 200.0])
    recorder = make_recorder(clock=lambda: next(ticks))
    recorder.save_json("j", 1)
    recorder.save_json("j", 2, timestamp=150.5)
    recorder.save_json("j", 3)
    recorder.close()
    lines = (tmp_path / "rec" / "j.jsonl").read_text().splitlines()
    assert [json.loads(line)["timestamp"] for line in lines] == [100.0, 150.5, 200.0]


@pytest.mark.timeout(30)
def test_rows_reach_the_disk_every_flush_interval_without_close(make_recorder, tmp_path):
    recorder = make_recorder(flush_interval=0.1)
    recorder.save_tabular("live", {"v": 1})
    recorder.save_text("live_text", "hello")
    deadline = time.monotonic() + 10
    path = tmp_path / "rec" / "live.csv"
    while not (path.exists() and len(read_csv(path)) == 2 and
               (tmp_path / "rec" / "live_text.txt").read_bytes() == b"hello"):
        assert time.monotonic() < deadline, "no flush within 10 s"
        time.sleep(0.02)  # polling the disk: there is no event for "the OS has the bytes"
    assert not recorder.closed


# -- lifecycle, stats and files --------------------------------------------------------------


@pytest.mark.timeout(30)
def test_close_is_idempotent_and_later_saves_raise(make_recorder, tmp_path):
    recorder = make_recorder()
    recorder.save_text("t", "x")
    recorder.close()
    recorder.close()
    assert recorder.closed
    with pytest.raises(StateError, match="closed"):
        recorder.save_text("t", "y")


@pytest.mark.timeout(30)
def test_a_recorder_that_saved_nothing_creates_nothing(make_recorder, tmp_path):
    recorder = make_recorder()
    recorder.close()
    assert recorder.files() == [] and recorder.stats() == {}
    assert not (tmp_path / "rec").exists()


@pytest.mark.timeout(30)
def test_files_and_stats_list_every_record(make_recorder, tmp_path):
    with make_recorder() as recorder:
        recorder.save_video("cam", np.zeros((16, 16, 3), np.uint8), 10)
        recorder.save_audio("mic", np.zeros(160, np.int16), 16000, 1)
        recorder.save_tabular("tab", {"a": 1})
        recorder.save_image("img", np.zeros((4, 4), np.uint8))
        recorder.save_json("js", {})
        recorder.save_text("txt", "t")
    folder = tmp_path / "rec"
    names = {str(path.relative_to(folder)) for path in recorder.files()}
    assert names == {
        "cam.mp4", "cam.timestamps.csv", "mic.wav", "mic.audio.json", "mic.blocks.csv",
        "tab.csv", "img/0.png", "img/timestamps.csv", "js.jsonl", "txt.txt",
        "txt.timestamps.csv",
    }
    assert all(path.exists() for path in recorder.files())
    stats = recorder.stats()
    assert {name: s["kind"] for name, s in stats.items()} == {
        "cam": "video", "mic": "audio", "tab": "tabular", "img": "image", "js": "json",
        "txt": "text"}
    for entry in stats.values():
        assert (entry["queued"], entry["written"], entry["backlog"], entry["errors"]) == (1, 1, 0, 0)
        assert entry["bytes"] > 0 and entry["failed"] is None


@pytest.mark.timeout(30)
def test_saves_never_wait_for_a_slow_writer_and_the_backlog_is_reported(
    make_recorder, tmp_path, monkeypatch, caplog
):
    gate = threading.Event()
    original = TabularWriter.write

    def slow_write(self, timestamp, payload):
        gate.wait(20)
        original(self, timestamp, payload)

    monkeypatch.setattr(TabularWriter, "write", slow_write)
    monkeypatch.setattr(recorder_module, "BACKLOG_WARNING_ITEMS", 10)
    recorder = make_recorder()
    with caplog.at_level(logging.WARNING, logger="chimerapy.records.recorder"):
        for i in range(25):  # returns although the writer is stuck on the first row
            recorder.save_tabular("slow", {"i": i})
    warnings = [r for r in caplog.records if "falling behind" in r.getMessage()]
    assert len(warnings) == 2  # at 10 and at 20 items: each warning waits for a doubling
    assert "slow" in warnings[0].getMessage()
    assert recorder.stats()["slow"]["backlog"] >= 24
    gate.set()
    recorder.close()
    assert recorder.stats()["slow"]["written"] == 25 and recorder.stats()["slow"]["backlog"] == 0
    assert len(read_csv(tmp_path / "rec" / "slow.csv")) == 26


# -- bad input: a RecordError naming the record, and everything else goes on ------------------

FRAME = np.zeros((24, 32, 3), np.uint8)
BLOCK = np.zeros(160, np.int16)

# (record, a valid call, a bad call, what the message says)
BAD_INPUT = [
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_video("cam", np.zeros((48, 64, 3), np.uint8), 30), "differs from"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_video("cam", FRAME.astype(np.float32), 30), "must be uint8"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_video("cam", np.zeros((24, 32, 4), np.uint8), 30), "shape"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_video("cam", FRAME, 25), "fps changed"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_video("cam", [[0]], 30), "numpy array"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", BLOCK.astype(np.float64), 16000, 1), "int16 or float32"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", BLOCK.astype(np.float32), 16000, 1), "dtype changed"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", BLOCK, 44100, 1), "rate changed"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", np.zeros((160, 2), np.int16), 16000, 2), "channels changed"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", np.zeros((160, 3), np.int16), 16000, 1), "do not match"),
    ("mic", lambda r: r.save_audio("mic", BLOCK, 16000, 1),
     lambda r: r.save_audio("mic", BLOCK, 16000.0, 1), "must be an int"),
    ("tab", lambda r: r.save_tabular("tab", {"a": 1, "b": 2}),
     lambda r: r.save_tabular("tab", {"a": 1, "c": 3}), "new ['c'], missing ['b']"),
    ("tab", lambda r: r.save_tabular("tab", {"a": 1, "b": 2}),
     lambda r: r.save_tabular("tab", {"a": 1, "b": [2]}), "column 'b' holds a list"),
    ("tab", lambda r: r.save_tabular("tab", {"a": 1, "b": 2}),
     lambda r: r.save_tabular("tab", {"a": 1, "b": 2, "timestamp": 0}), "reserved"),
    ("tab", lambda r: r.save_tabular("tab", {"a": 1, "b": 2}),
     lambda r: r.save_tabular("tab", [1, 2]), "must be a dict"),
    ("js", lambda r: r.save_json("js", {"ok": 1}),
     lambda r: r.save_json("js", {"bad": object()}), "cannot be serialised"),
    ("js", lambda r: r.save_json("js", {"ok": 1}),
     lambda r: r.save_json("js", {1, 2}), "cannot be serialised"),
    ("img", lambda r: r.save_image("img", FRAME),
     lambda r: r.save_image("img", FRAME.astype(np.int32)), "must be uint8"),
    ("txt", lambda r: r.save_text("txt", "fine"),
     lambda r: r.save_text("txt", b"bytes"), "must be a str"),
    ("txt", lambda r: r.save_text("txt", "fine"),
     lambda r: r.save_text("txt", "fine", timestamp=float("nan")), "finite"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_json("cam", {}), "is a video record"),
    ("cam", lambda r: r.save_video("cam", FRAME, 30),
     lambda r: r.save_tabular("cam.timestamps", {"a": 1}), "also written by record 'cam'"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "record, good, bad, says", BAD_INPUT, ids=[f"{case[0]}-{case[3]}" for case in BAD_INPUT]
)
def test_bad_input_names_the_record_and_nothing_else_stops(
    make_recorder, tmp_path, record, good, bad, says
):
    errors: list[RecordError] = []
    recorder = make_recorder(on_error=errors.append)
    recorder.save_tabular("bystander", {"i": 0})
    good(recorder)
    with pytest.raises(RecordError) as caught:
        bad(recorder)
    failed = caught.value.record
    assert failed in str(caught.value) and says in str(caught.value)
    assert failed in (record, "cam.timestamps")
    good(recorder)  # the record stays usable with valid input
    recorder.save_tabular("bystander", {"i": 1})
    recorder.close()
    assert errors == []  # nothing reached the writer thread
    stats = recorder.stats()
    assert stats[record]["written"] == 2
    assert stats[record]["errors"] == (1 if failed == record else 0)
    assert len(read_csv(tmp_path / "rec" / "bystander.csv")) == 3


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "a\\b", "..", ".", "a\x00b", "line\nbreak", "x" * 65, ".hidden", "CON",
     "nul.txt", "trailing.", " padded", "what?", 'quote"', 3],
)
def test_names_that_are_not_portable_file_names_are_refused(make_recorder, name):
    recorder = make_recorder()
    with pytest.raises(RecordError, match="not a valid file name|must be a str") as caught:
        recorder.save_text(name, "x")
    assert caught.value.record == str(name) and repr(str(name)) in str(caught.value)
    recorder.save_text("fine", "x")  # the Recorder goes on


@pytest.mark.parametrize("name", ["cam", "camera_1", "a.b", "Kamera-2", "名前", "x" * 64])
def test_portable_names_are_accepted(name):
    assert check_name(name) == name


@pytest.mark.timeout(30)
def test_an_existing_file_is_never_overwritten(make_recorder, tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "old.csv").write_text("precious\n")
    recorder = make_recorder()
    with pytest.raises(RecordError, match="exists already") as caught:
        recorder.save_tabular("old", {"a": 1})
    assert caught.value.record == "old"
    assert (tmp_path / "rec" / "old.csv").read_text() == "precious\n"


# -- failures in the writer thread -----------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_writer_failure_reaches_on_error_and_closes_only_that_record(
    make_recorder, tmp_path, monkeypatch
):
    original = VideoWriter.write
    calls = {"n": 0}

    def failing_write(self, timestamp, payload):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        original(self, timestamp, payload)

    monkeypatch.setattr(VideoWriter, "write", failing_write)
    reported: list[RecordError] = []
    failed = threading.Event()
    recorder = make_recorder(on_error=lambda error: (reported.append(error), failed.set()))
    for i in range(8):
        recorder.save_video("cam", FRAME, 10)
        recorder.save_tabular("rows", {"i": i})
    assert failed.wait(20)
    (error,) = reported
    assert isinstance(error, RecordError) and error.record == "cam"
    assert "No space left" in str(error) and isinstance(error.__cause__, OSError)
    with pytest.raises(RecordError, match="closed after a writer error") as caught:
        recorder.save_video("cam", FRAME, 10)
    assert caught.value.record == "cam"
    recorder.save_tabular("rows", {"i": 8})
    recorder.close()
    stats = recorder.stats()
    assert stats["cam"]["written"] == 4 and stats["cam"]["failed"] and stats["cam"]["errors"] == 2
    assert stats["cam"]["written"] + stats["cam"]["dropped"] == 8
    assert stats["rows"]["written"] == 9 and stats["rows"]["failed"] is None
    assert len(read_csv(tmp_path / "rec" / "rows.csv")) == 10
    with av.open(str(tmp_path / "rec" / "cam.mp4")) as container:  # closed cleanly up to there
        assert sum(1 for _ in container.decode(video=0)) == 4


@pytest.mark.timeout(30)
def test_a_disk_error_reaches_on_error_for_each_record(make_recorder, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the directory should be")
    reported: list[RecordError] = []
    recorder = make_recorder(blocked, on_error=reported.append)
    recorder.save_json("a", 1)
    recorder.save_text("b", "x")
    recorder.close()
    assert sorted(error.record for error in reported) == ["a", "b"]
    assert all("opening its files failed" in str(error) for error in reported)


@pytest.mark.timeout(30)
def test_without_on_error_a_writer_failure_is_logged(make_recorder, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("")
    recorder = make_recorder(blocked)
    with caplog.at_level(logging.ERROR, logger="chimerapy.records.recorder"):
        recorder.save_json("a", 1)
        recorder.close()
    assert any("record 'a'" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(30)
def test_a_raising_on_error_does_not_stop_the_writer_thread(make_recorder, tmp_path, monkeypatch):
    def broken_callback(error: RecordError) -> None:
        raise RuntimeError("bug in the callback")

    monkeypatch.setattr(VideoWriter, "write", lambda *args: 1 / 0)
    recorder = make_recorder(on_error=broken_callback)
    recorder.save_video("cam", FRAME, 10)
    recorder.save_tabular("rows", {"i": 1})
    recorder.close()
    assert recorder.stats()["cam"]["failed"] and recorder.stats()["rows"]["written"] == 1


@pytest.mark.timeout(30)
def test_on_error_may_close_the_recorder(make_recorder, tmp_path, monkeypatch):
    monkeypatch.setattr(VideoWriter, "write", lambda *args: 1 / 0)
    recorder = make_recorder(on_error=lambda error: recorder.close())
    recorder.save_tabular("rows", {"i": 1})
    recorder.save_video("cam", FRAME, 10)
    recorder.close()
    assert recorder.closed and recorder.stats()["rows"]["written"] == 1
