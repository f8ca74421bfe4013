"""One real session across three Workers (one with its clock 30 s off under faketime), recorded by
the packs' own nodes: `video.test_pattern` -> `video.recorder`, `audio.tone` -> `audio.recorder`,
`ml.face_detect` on the pattern, a `core.recorder` on both sources, and a node of our own that
tables what it received; then every stream loaded with `cp.open_session` and checked against what
the nodes emitted and saw: counts, times (within 1 ms), `frame_at(t)` and `session.at(t)`."""

from __future__ import annotations

import time

import chimerapy as cp
import numpy as np
import pytest
from chimerapy import registry
from chimerapy_nodes_video.test_pattern import read_frame_code
from support.archive import record_with_skewed_worker, steps_of

SIZE = {"width": 320, "height": 240}  # wide enough for the frame code (24 cells of 8 pixels or more)
RATE, BLOCK, FREQUENCY, AMPLITUDE = 16000, 800, 440.0, 0.5
PLACEMENT = {
    "w1": ["pattern", "video_rec"],
    "w2": ["audio_rec", "face"],
    "skewed": ["tone", "witness", "rec"],
}
MS = 0.001


class Witness(cp.Node):
    """Tables every chunk it receives: the source's own index and time, this node's `now()` when it
    saw it, and the raw wall clock of its process (to show the Worker's clock really is off)."""

    def main(self) -> None:
        while self.running:
            for chunk in self.poll_inputs(0.1):
                if "frame_index" in chunk:
                    index, name = chunk.get("frame_index")["value"], "frames"
                else:
                    index, name = chunk.get("sample_index")["value"], "blocks"
                seen, raw = self.now(), time.time()
                row = {"index": index, "stamped": chunk.get("timestamp")["value"], "seen": seen, "raw": raw}
                self.save_tabular(name, row, timestamp=seen)


def build_graph() -> cp.Graph:
    pattern = registry.create("video.test_pattern", "pattern", fps=30, **SIZE)
    tone = registry.create("audio.tone", "tone", frequency=FREQUENCY, amplitude=AMPLITUDE,
                           samplerate=RATE, blocksize=BLOCK)
    nodes = {
        "pattern": pattern, "tone": tone,
        "video_rec": registry.create("video.recorder", "video_rec"),
        "audio_rec": registry.create("audio.recorder", "audio_rec"),
        "face": registry.create("ml.face_detect", "face"),
        "rec": registry.create("core.recorder", "rec"),
        "witness": Witness("witness"),
    }
    graph = cp.Graph()
    graph.add_nodes(list(nodes.values()))
    for source, target in [("pattern", "video_rec"), ("pattern", "face"), ("pattern", "rec"),
                           ("pattern", "witness"), ("tone", "audio_rec"), ("tone", "rec"),
                           ("tone", "witness")]:
        graph.add_edge(nodes[source], nodes[target])
    return graph


@pytest.fixture
def session_path(tmp_path):
    """Records the session (about 4 s of data) and returns its folder."""
    return record_with_skewed_worker(
        tmp_path, build_graph(), PLACEMENT,
        until=lambda manager: steps_of(manager, "pattern") >= 90 and steps_of(manager, "face") >= 10)


def written(meta, node, record):
    """How many items the recorder of ``node`` wrote into ``record`` (meta.json's node_stats)."""
    stats = meta["node_stats"][node]["records"][record]
    assert stats["errors"] == 0 and stats["dropped"] == 0, stats
    return stats["written"]


def assert_same_times(got, expected, what):
    assert len(got) == len(expected), f"{what}: {len(got)} times, expected {len(expected)}"
    error = np.abs(np.asarray(got) - np.asarray(expected)).max()
    assert error < MS, f"{what}: times differ from what the nodes saw by up to {error / MS:.3f} ms"


def tone_block(sample_index, frames=BLOCK):
    """The samples `audio.tone` makes for the block starting at ``sample_index``."""
    index = np.arange(sample_index, sample_index + frames, dtype=np.float64)
    return (AMPLITUDE * np.sin(2.0 * np.pi * np.mod(index * (FREQUENCY / RATE), 1.0))).astype(np.float32)


@pytest.mark.timeout(90)
def test_a_session_of_three_workers_loads_with_what_every_node_saw(session_path):
    session = cp.open_session(session_path)
    meta = session.meta
    found = {(s.worker, s.key): s.kind for s in session.streams}
    assert found == {
        ("w1", "video_rec/video"): "video",
        ("w2", "audio_rec/audio"): "audio",
        ("w2", "face/detections"): "json",
        ("skewed", "witness/frames"): "tabular", ("skewed", "witness/blocks"): "tabular",
        ("skewed", "rec/pattern.frame"): "video", ("skewed", "rec/pattern"): "tabular",
        ("skewed", "rec/tone.samples"): "audio", ("skewed", "rec/tone"): "tabular",
    }, found
    for edge in meta["edge_stats"]:
        assert edge["lost"] == 0, edge

    # what the sources emitted, as the witness on the skewed Worker received it
    frames, blocks = session.stream("witness", "frames").table(), session.stream("witness", "blocks").table()
    emitted = meta["node_stats"]["pattern"]["outputs"]
    assert list(frames["index"]) == list(range(emitted)) and emitted >= 90
    assert list(blocks["index"]) == [BLOCK * k for k in range(meta["node_stats"]["tone"]["outputs"])]
    assert len(blocks) >= 20
    frame_times, block_times = frames["stamped"].to_numpy(), blocks["stamped"].to_numpy()

    # the witness's own rows, each saved at the now() it noted as `seen`
    for name, table in (("frames", frames), ("blocks", blocks)):
        stream = session.stream("witness", name)
        assert stream.count == written(meta, "witness", name) == len(table)
        assert_same_times(stream.times, table["seen"], stream.key)
    # its Worker's clock reads 30 s early, yet its times are the Manager's: after the frame was made
    assert abs(np.median(frames["seen"] - frames["raw"]) - 30.0) < MS
    delay = frames["seen"].to_numpy() - frame_times
    assert (delay > 0).all() and np.median(delay) < 0.05, f"frames seen {np.median(delay):.4f} s after made"

    # video: every frame the pattern made, with its time and its index in the pixels
    for stream, record in ((session.stream("video_rec", "video"), "video"),
                           (session.stream("rec", "pattern.frame"), "pattern.frame")):
        assert stream.count == written(meta, stream.node, record) == emitted
        assert_same_times(stream.times, frame_times, stream.key)
        rng = np.random.default_rng(16)
        for index in [0, emitted - 1, *rng.integers(0, emitted, 10).tolist()]:
            t = float(frame_times[index])
            assert read_frame_code(stream.frame_at(t)) == index, f"{stream.key}: frame_at(t of {index})"
            assert read_frame_code(stream.frame(index)) == index
            following = frame_times[index + 1] if index + 1 < emitted else t + 1.0
            assert read_frame_code(stream.frame_at((t + following) / 2)) == index
    recorded_rows = session.stream("rec", "pattern").table()
    assert list(recorded_rows["frame_index"]) == list(range(emitted))
    assert_same_times(recorded_rows["timestamp"], frame_times, "rec/pattern")

    # audio: every block the tone made, at the time it gave its first sample
    for stream, record in ((session.stream("audio_rec", "audio"), "audio"),
                           (session.stream("rec", "tone.samples"), "tone.samples")):
        assert stream.count == written(meta, stream.node, record) == len(blocks)
        assert_same_times(stream.times, block_times, stream.key)
        samples = stream.samples()
        assert samples.rate == RATE and samples.data.shape == (BLOCK * len(blocks), 1)
        assert np.allclose(samples.data[:, 0], tone_block(0, BLOCK * len(blocks)), atol=1e-6)
    tone_rows = session.stream("rec", "tone").table()
    assert list(tone_rows["sample_index"]) == list(blocks["index"]) and (tone_rows["rate"] == RATE).all()
    assert_same_times(tone_rows["timestamp"], block_times, "rec/tone")

    # ML: one row per processed frame (faces or not), at the time of the frame it came from
    detections = session.stream("face", "detections")
    processed = meta["node_stats"]["face"]["outputs"]
    assert detections.count == written(meta, "face", "detections") == processed >= 10
    rows = detections.records()
    indices = [row["data"]["frame_index"] for row in rows]
    assert indices == sorted(set(indices)) and all(isinstance(row["data"]["detections"], list) for row in rows)
    assert_same_times(detections.times, frame_times[indices], "face/detections")
    edge = meta["node_stats"]["face"]["inputs"]["pattern"]  # latest-only: a slow model skips frames
    assert edge["received"] == processed and edge["received"] + edge["skipped"] == emitted

    # at(t): the latest item of every stream, checked against what the nodes saw
    for index in (5, emitted // 2, emitted - 2):
        t = float(frame_times[index]) + 0.5 * MS
        state = session.at(t)
        assert set(state) == {s.key for s in session.streams}
        for key in ("video_rec/video", "rec/pattern.frame"):
            assert state[key] is not None and state[key].index == index
            assert read_frame_code(state[key].value) == index
        assert state["rec/pattern"].value["frame_index"] == index
        latest_processed = max(i for i in indices if i <= index) if min(indices) <= index else None
        if latest_processed is None:
            assert state["face/detections"] is None
        else:
            assert state["face/detections"].value["frame_index"] == latest_processed
        block = int(np.searchsorted(block_times, t, side="right")) - 1
        for key in ("audio_rec/audio", "rec/tone.samples"):
            if block < 0:
                assert state[key] is None
                continue
            assert state[key].index == block and state[key].time == pytest.approx(block_times[block], abs=MS)
            assert np.allclose(state[key].value[:, 0], tone_block(BLOCK * block), atol=1e-6)
        assert (state["rec/tone"] is None) if block < 0 else state["rec/tone"].value["sample_index"] == BLOCK * block
        for name, table in (("frames", frames), ("blocks", blocks)):  # the last row seen by t
            sample, seen = state[f"witness/{name}"], table["seen"].to_numpy()
            if sample is None:
                assert seen[0] > t, f"witness/{name}: nothing at t"
                continue
            assert seen[sample.index] <= t and (sample.index + 1 == len(seen) or seen[sample.index + 1] > t)
            assert sample.value["index"] == table["index"][sample.index]
    session.close()
