"""core.recorder in-process (chimerapy.testing): every kind of record goes to its file, with the
producer's time; and in a cluster, every chunk of every input is kept."""

from __future__ import annotations

import csv
import json
import wave

import av
import chimerapy as cp
import numpy as np
import pytest
from chimerapy import registry
from chimerapy.nodes.recorder import StreamRecorder
from chimerapy.testing import NodeHarness

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def chunk_of(records, images=()):
    chunk = cp.DataChunk()
    for name, value in records.items():
        chunk.add(name, value, "image" if name in images else "other")
    return chunk


def frame(i, shape=(48, 64, 3)):
    return np.full(shape, 20 + 40 * i, np.uint8)


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_every_kind_of_record_goes_to_its_file_with_the_time_of_its_chunk(tmp_path):
    tone = (np.sin(np.arange(320) / 5) * 8000).astype(np.int16).reshape(160, 2)
    depth = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 200
    with NodeHarness(StreamRecorder("rec"), directory=tmp_path) as harness:
        for i in range(3):
            t = T0 + i / 10
            harness.step({"cam": chunk_of({"frame": frame(i), "timestamp": t, "frame_index": i}, {"frame"})})
            harness.step({"mic": {"samples": tone, "rate": 16000, "channels": 2, "timestamp": t}})
            sensor = {
                "x": i * 0.5, "ok": i % 2 == 0, "n": np.int64(i), "nothing": None, "timestamp": t + 0.01,
                "label": f"piece {i}\n", "meta": {"i": i, "tags": ["a", "b"]},
                "vec": np.arange(3, dtype=np.float32) + i, "blob": bytes([i, 255]),
                "depth": depth + i, "rgba": rgba,
            }
            if i == 2:  # a scalar that appears late, and one that goes missing
                sensor["late"] = 7
                del sensor["ok"]
            harness.step({"sensor": chunk_of(sensor, {"depth", "rgba"})})
        harness.step({"untimed": {"v": 1}})  # no timestamp record: the time it was sent
        sent = harness.node.in_bound_data["untimed"].produced_at
    times = [T0 + i / 10 for i in range(3)]

    # image records become a video, one timestamp per frame: the chunk's, not the recorder's
    assert [float(r["timestamp"]) for r in rows(tmp_path / "cam.frame.timestamps.csv")] == times
    decoded = decode(tmp_path / "cam.frame.mp4")
    assert len(decoded) == 3
    for i, image in enumerate(decoded):
        assert np.abs(image.astype(int) - frame(i)).max() <= 8  # H.264 and YUV rounding
    assert [(r["timestamp"], r["frame_index"]) for r in rows(tmp_path / "cam.csv")] == [
        (repr(t), str(i)) for i, t in enumerate(times)
    ]
    # audio blocks become a WAV with the block times
    with wave.open(str(tmp_path / "mic.samples.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (16000, 2, 480)
        samples = np.frombuffer(wav.readframes(480), np.int16).reshape(480, 2)
    np.testing.assert_array_equal(samples, np.concatenate([tone] * 3))
    assert [float(r["timestamp"]) for r in rows(tmp_path / "mic.samples.blocks.csv")] == times
    assert [r["channels"] for r in rows(tmp_path / "mic.csv")] == ["2", "2", "2"]
    # scalars: one row per chunk; the first row's columns, empty where missing, late ones apart
    table = rows(tmp_path / "sensor.csv")
    assert [float(r["timestamp"]) for r in table] == [t + 0.01 for t in times]
    assert [(r["x"], r["ok"], r["n"], r["nothing"]) for r in table] == [
        ("0.0", "True", "0", ""), ("0.5", "False", "1", ""), ("1.0", "", "2", "")
    ]
    assert [(r["timestamp"], r["value"]) for r in rows(tmp_path / "sensor.late.csv")] == [(repr(times[2] + 0.01), "7")]
    # strings: text, each piece as sent and indexed
    assert (tmp_path / "sensor.label.txt").read_text() == "piece 0\npiece 1\npiece 2\n"
    assert [r["byte_offset"] for r in rows(tmp_path / "sensor.label.timestamps.csv")] == ["0", "8", "16"]
    # dicts: JSON lines
    lines = [json.loads(line) for line in (tmp_path / "sensor.meta.jsonl").read_text().splitlines()]
    assert lines == [{"timestamp": t + 0.01, "data": {"i": i, "tags": ["a", "b"]}} for i, t in enumerate(times)]
    # arrays: .npy stacks indexed with their times; bytes as uint8 arrays
    np.testing.assert_array_equal(np.load(tmp_path / "sensor.vec.000000.npy"), [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    assert [float(r["timestamp"]) for r in rows(tmp_path / "sensor.vec.arrays.csv")] == [t + 0.01 for t in times]
    np.testing.assert_array_equal(np.load(tmp_path / "sensor.blob.000000.npy")[2], [2, 255])
    # image records a video cannot hold: PNGs
    assert sorted(p.name for p in (tmp_path / "sensor.depth").iterdir()) == [
        "0.png", "1.png", "2.png", "timestamps.csv"
    ]
    assert len(list((tmp_path / "sensor.rgba").glob("*.png"))) == 3
    # a chunk without a timestamp record keeps the time it was sent
    assert [float(r["timestamp"]) for r in rows(tmp_path / "untimed.csv")] == [sent]


def test_png_frames_are_lossless_and_a_bad_record_is_skipped_while_the_others_go_on(tmp_path, caplog):
    with NodeHarness(StreamRecorder("rec", image_format="png"), directory=tmp_path) as harness:
        for i in range(2):
            noise = np.random.default_rng(i).integers(0, 256, (30, 40, 3), dtype=np.uint8)
            harness.step({"cam": chunk_of({"frame": noise, "odd": {1, 2}, "timestamp": T0 + i}, {"frame"})})
        assert harness.node._failed == {"cam.odd": 2}
    stamps = rows(tmp_path / "cam.frame" / "timestamps.csv")
    assert [float(r["timestamp"]) for r in stamps] == [T0, T0 + 1]
    with av.open(str(tmp_path / "cam.frame" / "1.png")) as container:
        image = next(container.decode(video=0)).to_ndarray(format="bgr24")
    np.testing.assert_array_equal(image, np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    warnings = [r for r in caplog.records if "cam.odd" in r.getMessage()]
    assert len(warnings) == 2  # the first failure, then the count at teardown


def test_options_are_checked_and_the_node_is_registered():
    with pytest.raises(ValueError, match="image_format must be 'video' or 'png'"):
        StreamRecorder(image_format="gif")
    with pytest.raises(ValueError, match="fps must be a number"):
        StreamRecorder(fps=0)
    info = registry.find("core.recorder")
    assert info.kind == "sink" and [p.name for p in info.parameters] == ["fps", "image_format"]
    assert registry.load("core.recorder") is StreamRecorder


class Counter(cp.Node):
    """Sends ``count``, ``double`` and a small frame per step, as fast as it can, ``limit`` times."""

    def __init__(self, name, limit):
        super().__init__(name)
        self.limit = limit

    def prep(self):
        self.i = 0

    def step(self):
        if self.i >= self.limit:
            import time

            time.sleep(0.01)
            return None
        chunk = cp.DataChunk()
        chunk.add("count", self.i)
        chunk.add("frame", np.full((16, 16), self.i % 256, np.uint8), "image")
        chunk.add("timestamp", T0 + self.i)
        self.i += 1
        return chunk


@pytest.mark.timeout(120)
def test_in_a_cluster_every_chunk_of_every_input_is_recorded(cluster, tmp_path):
    manager, _ = cluster("recorder-w1")
    graph = cp.Graph()
    recorder = StreamRecorder("rec")
    a, b = Counter("a", 200), Counter("b", 150)
    graph.add_edge(a, recorder)
    graph.add_edge(b, recorder)
    manager.commit_graph(graph, {"recorder-w1": ["a", "b", "rec"]})
    manager.start()
    wait_for(lambda: _outputs(manager, "a") >= 200 and _outputs(manager, "b") >= 150)
    assert manager.stop()
    folder = manager.session.path / "recorder-w1" / "rec"
    for name, count in (("a", 200), ("b", 150)):
        table = rows(folder / f"{name}.csv")
        assert [int(r["count"]) for r in table] == list(range(count))
        assert [float(r["timestamp"]) for r in table] == [T0 + i for i in range(count)]
        assert len(rows(folder / f"{name}.frame.timestamps.csv")) == count


def _outputs(manager, node):
    return manager.node_stats.get(node, {}).get("outputs", 0)


def wait_for(condition, timeout=60.0):
    """Poll ``condition`` (the Manager's stats arrive as events) until it holds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
