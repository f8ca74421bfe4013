"""Recording into one session archive: every kind of record, collection from several Workers,
damaged transfers, clock alignment of a Worker whose clock is off, and a node killed mid-run."""

import csv
import json
import os
import shutil
import signal
import time

import numpy as np
import pytest

import chimerapy as cp
from chimerapy.worker.files import FileStore
from support.requirements import missing

av = pytest.importorskip("av")


class RecordsEverything(cp.Node):
    """Records 10 s of 30 fps video, 16 kHz audio in 1024-sample blocks, 10 Hz rows, images, JSON, text."""

    def prep(self):
        self.frame = 0
        self.start = time.monotonic()

    def step(self):
        if self.frame >= 300:
            time.sleep(0.05)
            return None
        due = self.start + self.frame / 30
        time.sleep(max(0.0, due - time.monotonic()))
        image = np.zeros((240, 320, 3), np.uint8)
        image[:, : self.frame % 320] = 200
        self.save_video("camera", image, 30, timing="frames")  # every frame: counts are exact
        if self.frame % 3 == 0:  # 10 Hz
            self.save_tabular("rows", {"frame": self.frame, "value": self.frame * 0.5})
        samples_due = int((self.frame + 1) * 16000 / 30)
        written = getattr(self, "samples", 0)
        while written + 1024 <= samples_due:
            t = (np.arange(1024) + written) / 16000
            self.save_audio("mic", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, 1)
            written += 1024
        self.samples = written
        if self.frame % 100 == 0:
            self.save_image("snapshot", image)
            self.save_json("events", {"frame": self.frame, "tags": ["a", "b"]})
            self.save_text("notes", f"frame {self.frame}\n")
        self.frame += 1


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_every_record_kind_reaches_the_archive(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(RecordsEverything("rec"))
    assert manager.commit_graph(graph, {"w1": ["rec"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("rec", {}).get("steps", 0) >= 300, 40, "the recorder never got to 300 frames")
    assert manager.stop()
    folder = manager.session.path / "w1" / "rec"

    with av.open(str(folder / "camera.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 300
    cv2 = pytest.importorskip("cv2")
    capture = cv2.VideoCapture(str(folder / "camera.mp4"))
    opencv_frames = 0
    while capture.read()[0]:
        opencv_frames += 1
    capture.release()
    assert opencv_frames == 300
    stamps = list(csv.DictReader((folder / "camera.timestamps.csv").open()))
    assert len(stamps) == 300
    times = [float(row["timestamp"]) for row in stamps]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert abs((times[-1] - times[0]) - 299 / 30) < 0.5

    with av.open(str(folder / "mic.wav")) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples - 160000) <= 1024
    meta = json.loads((folder / "mic.audio.json").read_text())
    assert meta["rate"] == 16000 and meta["channels"] == 1 and abs(meta["start_time"] - times[0]) < 0.5

    rows = list(csv.DictReader((folder / "rows.csv").open()))
    assert len(rows) == 100 and list(rows[0]) == ["timestamp", "frame", "value"]
    assert [int(r["frame"]) for r in rows] == list(range(0, 300, 3))
    assert sorted(p.name for p in (folder / "snapshot").glob("*.png")) == ["0.png", "1.png", "2.png"]
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [e["data"]["frame"] for e in events] == [0, 100, 200]
    assert (folder / "notes.txt").read_text() == "frame 0\nframe 100\nframe 200\n"
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert meta["collected"]["w1"]["complete"] and meta["collected"]["w1"]["files"] >= 10
    assert meta["start_time"] < meta["stop_time"]
    assert "chimerapy-core" in meta["versions"]["manager"]


class Beacon(cp.Node):
    """Saves a few rows: its aligned time and its own (possibly wrong) wall clock."""

    def step(self):
        time.sleep(0.05)
        self.save_tabular("clock", {"raw": time.time()})


@pytest.mark.timeout(120)
def test_three_cp_workers_collect_into_one_session(make_manager, spawn_cp_worker):
    manager = make_manager()
    names = ["north", "south", "east"]
    for name in names:
        spawn_cp_worker(manager, name)
    assert manager.wait_for_workers(names, timeout=60)
    graph = cp.Graph()
    graph.add_nodes([Beacon(f"beacon_{name}") for name in names])
    assert manager.commit_graph(graph, {name: [f"beacon_{name}"] for name in names})
    manager.start()
    time.sleep(1.0)
    assert manager.stop()
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert sorted(meta["workers"]) == sorted(names) and sorted(meta["collected"]) == sorted(names)
    for name in names:
        rows = list(csv.DictReader((manager.session.path / name / f"beacon_{name}" / "clock.csv").open()))
        assert len(rows) >= 5
        assert meta["collected"][name]["complete"]
        assert "offset" in meta["clock_offsets"][name]


@pytest.mark.timeout(60)
def test_a_damaged_transfer_is_detected_and_fetched_again(cluster, monkeypatch, caplog):
    served = {"count": 0}
    original = FileStore._serve

    async def corrupt_first(self, request):
        served["count"] += 1
        response = await original(self, request)
        if served["count"] == 1:  # flip a byte of the first file that leaves the Worker
            from aiohttp import web

            body = bytearray(response._path.read_bytes())
            body[len(body) // 2] ^= 0xFF
            return web.Response(body=bytes(body))
        return response

    monkeypatch.setattr(FileStore, "_serve", corrupt_first)
    manager, (worker,) = cluster("w1")  # its file routes now serve through corrupt_first
    graph = cp.Graph()
    graph.add_node(Beacon("beacon"))
    assert manager.commit_graph(graph, {"w1": ["beacon"]})
    manager.start()
    time.sleep(0.5)
    assert manager.stop()
    report = json.loads((manager.session.path / "meta.json").read_text())["collected"]["w1"]
    assert report["retries"] == 1 and report["complete"]
    assert "arrived damaged" in caplog.text
    rows = list(csv.DictReader((manager.session.path / "w1" / "beacon" / "clock.csv").open()))
    assert len(rows) >= 3 and all(float(r["raw"]) > 0 for r in rows)  # the good copy landed
    assert not (worker.tempdir / manager.session.id).exists()  # deleted only after confirmation


@pytest.mark.timeout(120)
def test_worker_with_a_clock_off_by_30_s_records_aligned_times(make_manager, spawn_cp_worker):
    if not shutil.which("faketime"):
        missing("Debian's faketime (apt-get install faketime)")
    manager = make_manager()
    spawn_cp_worker(manager, "skewed", env={"FAKETIME": "-30s",
                                           "LD_PRELOAD": _libfaketime()})
    assert manager.wait_for_workers(["skewed"], timeout=60)
    time.sleep(2.5)  # let the Worker probe the Manager's clock a few times
    graph = cp.Graph()
    graph.add_node(Beacon("beacon"))
    assert manager.commit_graph(graph, {"skewed": ["beacon"]})
    manager.start()
    time.sleep(3)
    assert manager.stop()
    rows = list(csv.DictReader((manager.session.path / "skewed" / "beacon" / "clock.csv").open()))
    assert len(rows) > 30
    # the skewed clock reads 30 s early: Manager time at each row is raw + 30 s
    errors = sorted(abs(float(r["timestamp"]) - (float(r["raw"]) + 30.0)) for r in rows)
    assert float(rows[0]["raw"]) < time.time() - 29  # the Worker's clock really was off
    assert errors[len(errors) // 2] < 0.001, f"median error {errors[len(errors) // 2] * 1000:.3f} ms"
    assert errors[-1] < 0.005, f"worst error {errors[-1] * 1000:.3f} ms"
    clock = json.loads((manager.session.path / "meta.json").read_text())["clock_offsets"]["skewed"]
    assert abs(clock["offset"] - 30.0) < 0.001 and clock["uncertainty"] < 0.005 and len(clock["history"]) >= 3


def _libfaketime():
    for candidate in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                      "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(candidate):
            return candidate
    missing("libfaketime.so.1 (apt-get install faketime)")


class SteadyRecorder(cp.Node):
    def prep(self):
        self.frame = 0
        self.start = time.monotonic()

    def step(self):
        time.sleep(max(0.0, self.start + self.frame / 30 - time.monotonic()))
        self.save_video("camera", np.full((120, 160, 3), self.frame % 256, np.uint8), 30)
        self.save_tabular("rows", {"frame": self.frame})
        self.frame += 1


@pytest.mark.timeout(120)
def test_a_node_killed_mid_run_keeps_its_recordings_and_is_reported(cluster):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_nodes([SteadyRecorder("victim"), Beacon("bystander")])
    assert manager.commit_graph(graph, {"w1": ["victim", "bystander"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("victim", {}).get("steps", 0) >= 90, 30, "victim never reached 3 s")
    victim = next(p for p in worker.supervisor.nodes.values() if p.name == "victim")
    steps_at_kill = manager.node_stats["victim"]["steps"]
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: any(e.node == "victim" and e.phase == "process" for e in manager.errors), 10,
             "the Manager was not told of the crash")
    error = next(e for e in manager.errors if e.node == "victim")
    assert "-9" in error.remote_traceback and error.worker == "w1"
    assert manager.node_states["victim"] == "crashed"
    time.sleep(0.5)
    bystander_before = manager.node_stats["bystander"]["steps"]
    time.sleep(0.6)
    assert manager.node_stats["bystander"]["steps"] > bystander_before  # the rest keeps running
    manager.stop()
    folder = manager.session.path / "w1" / "victim"
    with av.open(str(folder / "camera.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= steps_at_kill - 45  # at most about a second (plus stats latency) lost
    rows = list(csv.DictReader((folder / "rows.csv").open()))
    assert len(rows) >= steps_at_kill - 45
    assert (manager.session.path / "w1" / "bystander" / "clock.csv").exists()
