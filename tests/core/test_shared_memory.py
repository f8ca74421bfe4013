"""Large frames between processes of one host go through shared memory: exact, read-only, never
changed under a node that keeps them, and the segments are removed afterwards."""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import chimerapy as cp
import numpy as np
import pytest
from chimerapy.net.shm import SlotPool, SlotReader

pytestmark = pytest.mark.timeout(120)


class Frames(cp.Node):
    """VGA frames whose every pixel holds the frame number (mod 256), as fast as possible."""

    def prep(self):
        self.index = 0

    def step(self):
        if self.index >= 300:
            time.sleep(0.01)
            return None
        chunk = cp.DataChunk()
        chunk.add("frame", np.full((480, 640, 3), self.index % 256, np.uint8), "image")
        chunk.add("index", self.index)
        self.index += 1
        return chunk


class Hoarder(cp.Node):
    """Keeps every frame it gets (more than the pool has slots) and checks them all at the end."""

    def prep(self):
        self.kept = []

    def step(self, data_chunks):
        chunk = data_chunks["frames"]
        frame = chunk.get("frame")["value"]
        assert not frame.flags.writeable
        self.kept.append((chunk.get("index")["value"], frame))

    def teardown(self):
        changed = [i for i, frame in self.kept if not (frame[0, 0, 0] == i % 256 and frame[-1, -1, -1] == i % 256)]
        self.save_json("check", {"kept": len(self.kept), "changed": changed})


def test_frames_kept_past_their_step_never_change_and_segments_are_removed(cluster):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(Frames("frames"), Hoarder("hoarder"))
    assert manager.commit_graph(graph, {"w1": ["frames", "hoarder"]})
    pids = [process.pid for process in worker.supervisor.nodes.values()]
    manager.start()
    deadline = time.monotonic() + 60
    while manager.node_stats.get("hoarder", {}).get("steps", 0) < 300 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(glob.glob(f"/dev/shm/chimerapy-{pid}-*") for pid in pids)  # the frames went this way
    assert manager.stop()
    edge = manager.final_stats["hoarder"]["inputs"]["frames"]
    assert edge["received"] == 300 and edge["lost"] == 0
    import json

    check = json.loads((manager.session.path / "w1" / "hoarder" / "check.jsonl").read_text())["data"]
    assert check == {"kept": 300, "changed": []}, [e.remote_traceback for e in manager.errors][:1]
    assert [path for pid in pids for path in glob.glob(f"/dev/shm/chimerapy-{pid}-*")] == []


def test_slots_are_reused_only_after_every_consumer_let_go():
    pool, readers = SlotPool(2, per_consumer=1), [SlotReader("a"), SlotReader("b")]
    frame = np.arange(70_000, dtype=np.uint8)
    try:
        first = pool.put(frame, [0, 1])
        assert pool.held(0) == pool.held(1) == 1 and pool.behind(0) and pool.behind(1)
        views = [reader.view(first, np.dtype(np.uint8), frame.shape, index) for index, reader in enumerate(readers)]
        assert not pool.behind(0) and not pool.behind(1)  # mapped: held, but not on its way
        second = pool.put(frame, [0, 1])
        assert second is not None and second["m"] != first["m"]
        assert pool.put(frame, [0, 1]) is None  # both slots held: the caller sends bytes instead
        del views[0]
        assert pool.put(frame, [0, 1]) is None  # consumer b still holds the first slot
        views.clear()
        third = pool.put(frame * 0, [0, 1])
        assert third is not None and third["m"] == first["m"]
    finally:
        pool.close()


def test_each_consumer_holds_only_its_own_budget_and_dropped_claims_are_given_back():
    pool, reader = SlotPool(2, per_consumer=2), SlotReader("a")
    frame = np.arange(70_000, dtype=np.uint8)
    try:
        references = [pool.put(frame, [0, 1]) for _ in range(2)]
        for reference in references:  # consumer a reads and lets go; consumer b never reads
            reader.view(reference, np.dtype(np.uint8), frame.shape, 0)
        assert pool.held(0) == 0 and pool.held(1) == 2 and pool.behind(1)
        # b is over its budget: the publisher claims for a only, and a never waits for b's slots
        for _ in range(5):
            reference = pool.put(frame, [0])
            assert reference is not None and reference["m"] not in {r["m"] for r in references}
            reader.view(reference, np.dtype(np.uint8), frame.shape, 0)
        assert pool.held(1) == 2 and len(pool._slots) == 3
        # a message the publisher dropped for b gives b's claim back
        pool.release(references[0], 1)
        assert pool.held(1) == 1
        assert pool.put(frame, [0, 1])["m"] == references[0]["m"]
    finally:
        pool.close()


def test_segments_are_private_to_their_user():
    pool = SlotPool(1)
    try:
        reference = pool.put(np.zeros(70_000, np.uint8), [0])
        info = os.stat(reference["m"])
        assert info.st_mode & 0o777 == 0o600 and info.st_uid == os.geteuid()
    finally:
        pool.close()


def test_a_new_worker_removes_segments_whose_node_process_is_gone_and_no_other():
    """Nodes killed with their Worker cannot remove their segments; the next Worker does."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    orphan = f"/dev/shm/chimerapy-{ended.pid}-0-test"
    live = f"/dev/shm/chimerapy-{os.getpid()}-0-test"  # a running process's: still in use
    others = f"/dev/shm/chimerapy-{ended.pid}-1-test"  # another user's: not ours to remove
    for path in (orphan, live, others):
        with open(path, "wb") as file:
            file.write(b"x" * 4096)
    try:
        if os.geteuid() == 0:
            os.chown(others, 65534, 65534)
        worker = cp.Worker(name="sweeper", port=0)
        try:
            assert not os.path.exists(orphan)
            assert os.path.exists(live)
            assert os.path.exists(others) == (os.geteuid() == 0)
        finally:
            worker.shutdown()
    finally:
        for path in (orphan, live, others):
            if os.path.exists(path):
                os.unlink(path)


SMALL_SHM_SCENARIO = '''
import json, subprocess, sys, time
import numpy as np
import chimerapy as cp

subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=1777", "tmpfs", "/dev/shm"], check=True)
COUNT = 20
IN_PLACE = sys.argv[2] == "in-place"

class HD(cp.Node):
    def prep(self):
        self.index = 0
    def step(self):
        if self.index >= COUNT:
            time.sleep(0.01)
            return None
        if IN_PLACE:  # the frame written into an output buffer (a slot while one fits)
            frame = self.output_buffer("frame", (1080, 1920, 3))
            frame[...] = self.index % 256
        else:
            frame = np.full((1080, 1920, 3), self.index % 256, np.uint8)
        chunk = cp.DataChunk()
        chunk.add("frame", frame, "image")
        chunk.add("index", self.index)
        self.index += 1
        return chunk

class Check(cp.Node):
    def prep(self):
        self.bad = []
    def step(self, data_chunks):
        chunk = data_chunks["hd"]
        frame, index = chunk.get("frame")["value"], chunk.get("index")["value"]
        if not (frame.shape == (1080, 1920, 3) and frame[0, 0, 0] == frame[-1, -1, -1] == index % 256):
            self.bad.append(index)
    def teardown(self):
        self.save_json("check", {"bad": self.bad})

manager = cp.Manager(logdir=sys.argv[1], port=0)
worker = cp.Worker("w", port=0)
try:
    assert worker.connect(manager.host, manager.port)
    graph = cp.Graph()
    graph.add_edge(HD("hd"), Check("check"))
    assert manager.commit_graph(graph, {"w": ["hd", "check"]})
    manager.start()
    deadline = time.monotonic() + 60
    while manager.node_stats.get("check", {}).get("steps", 0) < COUNT and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = bool(manager.stop())
    log = (manager.session.path / "chimerapy.log").read_text()
    check = json.loads((manager.session.path / "w" / "check" / "check.jsonl").read_text())["data"]
    print(json.dumps({"stopped": stopped, "stats": manager.final_stats, "log": log, "check": check,
                      "errors": [str(e) for e in manager.errors], "shm_size": subprocess.run(
                          ["df", "-k", "/dev/shm"], capture_output=True, text=True).stdout}))
finally:
    worker.shutdown()
    manager.shutdown()
'''


@pytest.mark.timeout(180)
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="a private /dev/shm needs root and unshare")
@pytest.mark.parametrize("source", ["copied", "in-place"])
def test_a_1080p_pipeline_with_an_8_mb_dev_shm_delivers_every_frame_and_names_the_fix(tmp_path, source):
    script = tmp_path / "scenario.py"
    script.write_text(SMALL_SHM_SCENARIO)
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, str(script),
                             str(tmp_path / "runs"), source], capture_output=True, text=True, timeout=170, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert " 8192 " in report["shm_size"]  # the scenario really ran with an 8 MB /dev/shm
    edge = report["stats"]["check"]["inputs"]["hd"]
    assert (edge["received"], edge["lost"]) == (20, 0) and report["check"] == {"bad": []}
    assert report["stopped"] and report["errors"] == []  # no SIGBUS, no crash
    warnings = [line for line in report["log"].splitlines() if "has no room" in line]
    assert len(warnings) == 1 and "--shm-size" in warnings[0] and "[w/hd]" in warnings[0]
