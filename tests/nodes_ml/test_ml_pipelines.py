"""ML nodes on a real cluster: face detection in a real-time video pipeline, where the model skips
rather than lags, and voice activity on a live audio stream."""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

import chimerapy as cp
from chimerapy_nodes_ml import FaceDetect, VoiceActivity
from chimerapy_nodes_video import Overlay, VideoFile, VideoRecorder
from ml_media import audible_extent, count_frames, write_face_clip

FPS = 30
PERIOD = 1 / FPS


class ResultLog(cp.Node):
    """Writes what it receives from ML nodes (records, when they were sent) as JSON at teardown."""

    def __init__(self, name, path):
        super().__init__(name)
        self.path = str(path)

    def prep(self):
        self.seen = []

    def step(self, data_chunks):
        for chunk in data_chunks.values():
            row = {name: record["value"] for name, record in chunk.items()}
            row.update(seq=chunk.seq, produced_at=chunk.produced_at, received_at=chunk.received_at)
            self.seen.append(row)

    def teardown(self):
        Path(self.path).write_text(json.dumps(self.seen))


class SpeechSource(cp.Node):
    """Plays int16 ``samples`` once, in real time, as audio chunks of ``block`` samples.

    Each chunk carries the audio records (``timestamp`` of its first sample on the Manager's
    clock, ``sample_index``); the first sample's time is written to ``start_path``.
    """

    def __init__(self, name, samples, rate, start_path, block=1024):
        super().__init__(name)
        self.samples, self.rate, self.start_path, self.block = samples, rate, str(start_path), block

    def prep(self):
        self.index, self.start, self.begun = 0, None, None

    def step(self):
        if self.index >= len(self.samples):
            time.sleep(0.05)
            return None
        if self.start is None:
            self.start, self.begun = self.now(), time.monotonic()
            Path(self.start_path).write_text(repr(self.start))
        due = (
            self.begun + (self.index + self.block) / self.rate
        )  # a block leaves once it is "recorded"
        time.sleep(max(0.0, due - time.monotonic()))
        part = self.samples[self.index : self.index + self.block].reshape(-1, 1)
        chunk = cp.DataChunk()
        for name, value in (
            ("samples", part),
            ("rate", self.rate),
            ("channels", 1),
            ("timestamp", self.start + self.index / self.rate),
            ("sample_index", self.index),
        ):
            chunk.add(name, value)
        self.index += self.block
        return chunk


@pytest.mark.timeout(90)
def test_voice_activity_events_on_a_live_stream_are_in_the_manager_clock(cluster, tmp_path, speech):
    samples, rate = speech("The quick brown fox jumps over the lazy dog near the river bank")
    first, last = audible_extent(samples, rate)
    silence = np.zeros(rate, np.int16)
    manager, _ = cluster("w1")
    source = SpeechSource(
        "mic", np.concatenate([silence, samples, silence]), rate, tmp_path / "start.txt"
    )
    vad, log = VoiceActivity("vad"), ResultLog("log", tmp_path / "vad.json")
    graph = cp.Graph()
    graph.add_edge(source, vad)
    graph.add_edge(vad, log)
    assert manager.commit_graph(graph, {"w1": ["mic", "vad", "log"]})
    assert manager.start()
    duration = (len(samples) + 2 * rate) / rate
    deadline = time.monotonic() + duration + 30
    while manager.node_stats.get("vad", {}).get("outputs", 0) < -(
        -(len(samples) + 2 * rate) // 1024
    ):
        assert time.monotonic() < deadline, manager.node_stats.get("vad")
        time.sleep(0.2)
    assert manager.stop()
    assert manager.errors == []
    start = float((tmp_path / "start.txt").read_text())
    results = json.loads((tmp_path / "vad.json").read_text())
    events = [(event, r["received_at"]) for r in results for event in r["events"]]
    assert [e["type"] for e, _ in events] == ["start", "end"] * (len(events) // 2) and events, (
        events
    )
    assert abs(events[0][0]["time"] - (start + 1 + first)) <= 0.150, (events, start + 1 + first)
    assert abs(events[-1][0]["time"] - (start + 1 + last)) <= 0.150, (events, start + 1 + last)
    # each event was known soon after it happened (a block, min_speech or min_silence, the wire)
    assert all(known - event["time"] < 1.0 for event, known in events), events
    assert results[-1]["skipped"] == 0 and manager.final_stats["vad"]["inputs"]["mic"]["lost"] == 0


@pytest.mark.timeout(150)
def test_face_detection_keeps_up_with_a_30_fps_video_by_skipping_frames(cluster, tmp_path):
    clip = write_face_clip(tmp_path / "face.mp4", frames=120, fps=FPS)  # 4 s, played in a loop
    manager, _ = cluster("w1")
    source = VideoFile("file", path=str(clip), loop=True)
    # a thorough scan (scale steps of 5%): 5 to 15 frames/s here, slower than the source
    faces = FaceDetect("faces", scale_factor=1.05, report_every=2.0)
    overlay = Overlay("overlay", max_delay=0.5)
    recorder = VideoRecorder("rec", record_name="annotated", fps=FPS)
    log = ResultLog("log", tmp_path / "results.json")
    graph = cp.Graph()
    graph.add_edge(source, overlay)  # the followed input: frames
    graph.add_edge(source, faces)  # latest-only: FaceDetect.latest_only_inputs
    graph.add_edge(faces, overlay)
    graph.add_edge(overlay, recorder)
    graph.add_edge(faces, log)
    assert (
        graph.inputs(faces)[0][1]["latest_only"] and not graph.inputs(overlay)[0][1]["latest_only"]
    )
    assert manager.commit_graph(graph, {"w1": ["file", "faces", "overlay", "rec", "log"]})
    assert manager.start()
    time.sleep(20.0)
    assert manager.stop()
    assert manager.errors == []

    sent = manager.final_stats["file"]["outputs"]
    assert abs(sent - 20 * FPS) <= 2 * FPS, (
        sent
    )  # the source held its rate (starting takes a moment)
    results = json.loads((tmp_path / "results.json").read_text())
    processed = len(results)
    edge = manager.final_stats["faces"]["inputs"]["file"]
    # the model is slower than the source: it skipped frames, and said so, rather than queue them
    assert edge["skipped"] > sent / 4 and processed < sent * 3 / 4, (edge, processed, sent)
    assert processed == edge["received"] and sent - 5 <= processed + edge["skipped"] <= sent, (
        edge,
        sent,
    )
    assert edge["skipped"] - 5 <= results[-1]["skipped"] <= edge["skipped"] and edge["lost"] == 0, (
        edge
    )
    assert all(r["processing_fps"] >= 0 for r in results) and results[-1]["processing_fps"] > 1

    # every result is for a recent frame: it waited at most a few frames before the model took it
    waits = [r["latency"] - r["processing_time"] for r in results]
    assert statistics.median(waits) <= 3 * PERIOD, sorted(waits)[-10:]
    assert sorted(waits)[int(0.95 * len(waits))] <= 6 * PERIOD, sorted(waits)[-10:]
    # downstream, a result arrives a few frames after its frame plus the model's own time
    arrival = [r["received_at"] - r["timestamp"] for r in results]
    beyond_model = [a - r["processing_time"] for a, r in zip(arrival, results, strict=True)]
    assert statistics.median(beyond_model) <= 4 * PERIOD, sorted(beyond_model)[-10:]
    # and that delay does not grow over the run
    quarter = len(arrival) // 4
    assert (
        statistics.median(arrival[-quarter:]) <= statistics.median(arrival[:quarter]) + 3 * PERIOD
    ), (arrival[:quarter], arrival[-quarter:])
    indices = [r["frame_index"] for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)

    # the face is found in the frames the model worked on
    found = [r for r in results if r["detections"]]
    assert len(found) >= 0.9 * processed
    assert all(d["label"] == "face" and len(d["box"]) == 4 for r in found for d in r["detections"])

    # every frame reached the recording, at the source rate
    assert manager.final_stats["overlay"]["outputs"] == sent
    folder = Path(manager.session.path) / "w1" / "rec"
    assert count_frames(folder / "annotated.mp4") == sent
    with open(folder / "annotated.timestamps.csv", newline="") as file:
        stamps = [float(row["timestamp"]) for row in csv.DictReader(file)]
    assert len(stamps) == sent and abs(len(stamps) - (1 + (stamps[-1] - stamps[0]) * FPS)) <= 3
