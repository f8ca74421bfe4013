"""core.replay: a recorded session played back through core.recorder is reproduced (count, times,
values, frames); pacing; and what it says about sessions and streams it cannot find."""

from __future__ import annotations

import csv
import json
import time

import av
import chimerapy as cp
import numpy as np
import pytest
from chimerapy import NodeError, registry
from chimerapy.archive import open_session
from chimerapy.nodes.recorder import StreamRecorder
from chimerapy.nodes.replay import Replay, stream_items
from chimerapy.testing import NodeHarness

T0 = 1_700_000_000.0
N = 24


def picture(i: int) -> np.ndarray:
    """A smooth gradient with a bright square moving across: what H.264 keeps well."""
    y, x = np.mgrid[0:64, 0:96]
    image = np.stack([(x * 2 + i) % 256, (y * 3) % 256, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    image[20:40, 4 * i % 70 : 4 * i % 70 + 20] = 230
    return image


class Session(cp.Node):
    """Records a video, a table and a JSON stream of ``N`` items each, at times from ``T0``."""

    def prep(self):
        self.i = 0

    def step(self):
        if self.i >= N:
            time.sleep(0.01)
            return None
        t = T0 + self.i / 10
        self.save_video("frames", picture(self.i), 10, timestamp=t)
        self.save_tabular("rows", {"i": self.i, "x": self.i * 0.25, "ok": self.i % 3 == 0}, timestamp=t + 0.001)
        self.save_json("events", {"i": self.i, "tags": ["a", str(self.i)]}, timestamp=t + 0.002)
        self.i += 1
        return {"i": self.i}


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def decoded(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def wait_for(condition, timeout=60.0):
    """Poll ``condition`` (the Manager's stats arrive as events) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def outputs(manager, node):
    return manager.node_stats.get(node, {}).get("outputs", 0)


@pytest.mark.timeout(180)
def test_replay_into_a_recorder_reproduces_a_recorded_session(cluster):
    manager, _ = cluster("replay-w1")
    graph = cp.Graph()
    graph.add_node(Session("src"))
    manager.commit_graph(graph, {"replay-w1": ["src"]})
    manager.start()
    wait_for(lambda: outputs(manager, "src") >= N)
    assert manager.stop()
    original = manager.session.path

    graph = cp.Graph()
    replay = Replay("replay", session=str(original), streams=["src/frames", "src/rows", "src/events"], speed=0)
    as_video, as_png = StreamRecorder("rec"), StreamRecorder("png", image_format="png")
    graph.add_edge(replay, as_video)
    graph.add_edge(replay, as_png)
    manager.commit_graph(graph, {"replay-w1": ["replay", "rec", "png"]})
    assert manager.session.path != original
    manager.start()
    wait_for(lambda: outputs(manager, "replay") >= 3 * N)
    assert manager.stop()
    again = manager.session.path / "replay-w1"

    source = {s.name: s for s in open_session(original).streams}
    frames, table, events = source["frames"], source["rows"], source["events"]
    assert [s.count for s in (frames, table, events)] == [N, N, N]
    # the video: the same count and times; frames equal after decoding (PNG: exactly; H.264: closely)
    times = frames.times.tolist()
    assert times == [T0 + i / 10 for i in range(N)]
    assert [float(r["timestamp"]) for r in rows(again / "rec" / "src.frames.frame.timestamps.csv")] == times
    assert [float(r["timestamp"]) for r in rows(again / "png" / "src.frames.frame" / "timestamps.csv")] == times
    first = decoded(original / "replay-w1" / "src" / "frames.mp4")
    assert len(first) == N
    for i, image in enumerate(first):
        with av.open(str(again / "png" / "src.frames.frame" / f"{i}.png")) as container:
            np.testing.assert_array_equal(next(container.decode(video=0)).to_ndarray(format="bgr24"), image)
    second = decoded(again / "rec" / "src.frames.frame.mp4")
    assert len(second) == N
    for a, b in zip(first, second, strict=True):  # a second H.264 generation: visually the same
        mse = np.mean((a.astype(float) - b) ** 2)
        assert 10 * np.log10(255**2 / mse) > 32
    assert [int(r["frame_index"]) for r in rows(again / "rec" / "src.frames.csv")] == list(range(N))
    # the table: the same rows at the same times
    assert rows(again / "rec" / "src.rows.csv") == rows(original / "replay-w1" / "src" / "rows.csv")
    # the JSON stream: the same objects at the same times
    lines = (again / "rec" / "src.events.data.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in (original / "replay-w1" / "src" / "events.jsonl").read_text().splitlines()
    ]


@pytest.fixture
def recorded(tmp_path):
    """A session folder written by Session in-process: <tmp>/session/w1/src/."""
    with NodeHarness(Session("src"), directory=tmp_path / "session" / "w1" / "src") as harness:
        harness.run(N)
    return tmp_path / "session"


@pytest.mark.timeout(60)
def test_chunks_carry_the_recorded_times_in_order_with_the_records_live_sources_send(recorded):
    with NodeHarness(Replay(session=str(recorded / "meta.json"), speed=0)) as harness:
        chunks = harness.run(3 * N)
        assert harness.step() is None  # finished: nothing more
    times = [c.get("timestamp")["value"] for c in chunks]
    assert times == sorted(times) and len(times) == 3 * N
    video = [c for c in chunks if c.get("stream")["value"] == "src/frames"]
    assert [c.get("frame_index")["value"] for c in video] == list(range(N))
    assert video[0].get("frame")["content-type"] == "image" and video[0].get("frame")["value"].shape == (64, 96, 3)
    row = next(c for c in chunks if c.get("stream")["value"] == "src/rows")
    assert {name: row.get(name)["value"] for name in ("i", "x", "ok")} == {"i": 0, "x": 0.0, "ok": True}
    event = next(c for c in chunks if c.get("stream")["value"] == "src/events")
    assert event.get("data")["value"] == {"i": 0, "tags": ["a", "0"]} and event.get("timestamp")["value"] == T0 + 0.002


@pytest.mark.timeout(60)
def test_items_go_out_at_the_recorded_pace_divided_by_speed(recorded):
    with NodeHarness(Replay(session=str(recorded), streams=["w1/src/rows"], speed=4.0)) as harness:
        started = time.monotonic()
        chunks = harness.run(N)
        elapsed = time.monotonic() - started
    assert len(chunks) == N
    span = (N - 1) * 0.1 / 4.0  # rows are 0.1 s apart
    assert span - 0.01 <= elapsed < span + 1.0


@pytest.mark.timeout(60)
def test_a_missing_session_or_stream_is_named_with_what_exists(recorded, tmp_path):
    with pytest.raises(NodeError) as missing:
        NodeHarness(Replay(session=str(tmp_path / "nowhere"))).__enter__()
    assert "ArchiveError" in missing.value.remote_traceback
    assert "is not a session folder" in missing.value.remote_traceback
    with pytest.raises(NodeError) as unknown:
        NodeHarness(Replay(session=str(recorded), streams=["src/frames", "src/nope"])).__enter__()
    assert "has no stream 'src/nope'; its streams: src/events, src/frames, src/rows" in unknown.value.remote_traceback
    with pytest.raises(ValueError, match="speed must be a number >= 0"):
        Replay(session="x", speed=-1)
    with pytest.raises(ValueError, match="streams must be a list"):
        Replay(session="x", streams="src/frames")
    info = registry.find("core.replay")
    assert info.kind == "source" and [p.name for p in info.parameters] == ["session", "streams", "speed"]
    assert [p.name for p in info.parameters if p.required] == ["session"]


def record_all_kinds(folder):
    """Every kind core.recorder writes, from one producer 'dev', 5 chunks at times T0 + i."""
    tone = (np.arange(200, dtype=np.int16) * 50).reshape(100, 2)
    with NodeHarness(StreamRecorder("rec", fps=5), directory=folder) as harness:
        for i in range(5):
            chunk = cp.DataChunk()
            for name, value, content in [
                ("frame", picture(i), "image"), ("samples", tone + i, "other"), ("rate", 8000, "other"),
                ("note", f"n{i};", "other"), ("meta", {"i": i}, "other"), ("vec", np.arange(4.0) * i, "other"),
                ("depth", np.full((6, 8), 1000 * i, np.uint16), "image"), ("timestamp", T0 + i, "other"),
            ]:
                chunk.add(name, value, content)
            harness.step({"dev": chunk})


@pytest.mark.timeout(60)
def test_every_kind_core_recorder_writes_replays_and_records_again_alike(tmp_path):
    record_all_kinds(tmp_path / "first" / "w" / "rec")
    with NodeHarness(Replay(session=str(tmp_path / "first"), speed=0)) as replay:
        chunks = replay.run(8 * 5)  # 8 streams of 5 items
        assert replay.step() is None
    by_stream = {}
    for chunk in chunks:
        by_stream.setdefault(chunk.get("stream")["value"], []).append(chunk)
    assert {key: len(items) for key, items in by_stream.items()} == {
        "rec/dev": 5, "rec/dev.depth": 5, "rec/dev.frame": 5, "rec/dev.meta": 5, "rec/dev.note": 5,
        "rec/dev.samples": 5, "rec/dev.vec": 5,
    }
    for items in by_stream.values():
        assert [c.get("timestamp")["value"] for c in items] == [T0 + i for i in range(5)]
    value = lambda key, i, name: by_stream[key][i].get(name)["value"]
    assert value("rec/dev", 3, "rate") == 8000
    assert value("rec/dev.note", 2, "text") == "n2;" and value("rec/dev.meta", 4, "data") == {"i": 4}
    np.testing.assert_array_equal(value("rec/dev.vec", 3, "array"), np.arange(4.0) * 3)
    np.testing.assert_array_equal(value("rec/dev.depth", 2, "frame"), np.full((6, 8), 2000, np.uint16))
    block = value("rec/dev.samples", 1, "samples")
    np.testing.assert_array_equal(block, (np.arange(200, dtype=np.int16) * 50).reshape(100, 2) + 1)
    assert (value("rec/dev.samples", 1, "rate"), value("rec/dev.samples", 1, "sample_index")) == (8000, 100)
    assert value("rec/dev.frame", 4, "frame").shape == (64, 96, 3)

    # and recorded again: the same items at the same times
    with NodeHarness(StreamRecorder("again"), directory=tmp_path / "second" / "w" / "again") as harness:
        for chunk in chunks:
            harness.step({"replay": chunk})
    again = {s.name: s for s in open_session(tmp_path / "second").streams}
    first = {s.name: s for s in open_session(tmp_path / "first").streams}
    pairs = {"dev.samples": "rec.dev.samples.samples", "dev.vec": "rec.dev.vec.array",
             "dev.note": "rec.dev.note.text", "dev.meta": "rec.dev.meta.data", "dev.depth": "rec.dev.depth.frame",
             "dev.frame": "rec.dev.frame.frame", "dev": "rec.dev"}
    for old, new in pairs.items():
        assert again[new].kind == first[old].kind, new
        assert again[new].times.tolist() == first[old].times.tolist(), new
        for a, b in zip(stream_items(first[old]), stream_items(again[new]), strict=True):
            for name in a:  # a video's frames went through H.264 twice: compared in the cluster test
                if first[old].kind != "video" or name != "frame":
                    np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))
