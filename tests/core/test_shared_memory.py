"""Large frames between processes of one host go through shared memory: exact, read-only, never
changed under a node that keeps them, and the segments are removed afterwards."""

import glob
import threading
import time

import numpy as np
import pytest

import chimerapy as cp
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
    pool, readers = SlotPool(max_slots=2), [SlotReader("a"), SlotReader("b")]
    frame = np.arange(70_000, dtype=np.uint8)
    try:
        first = pool.put(frame, consumers=2)
        views = [reader.view(first, np.dtype(np.uint8), frame.shape, index) for index, reader in enumerate(readers)]
        second = pool.put(frame, consumers=2)
        assert second is not None and second["m"] != first["m"]
        assert pool.put(frame, consumers=2) is None  # both slots held: the caller sends bytes instead
        del views[0]
        assert pool.put(frame, consumers=2) is None  # consumer b still holds the first slot
        views.clear()
        third = pool.put(frame * 0, consumers=2)
        assert third is not None and third["m"] == first["m"]
    finally:
        pool.close()


def test_a_full_pool_waits_only_for_slots_still_on_their_way():
    pool, reader = SlotPool(max_slots=1, patience=30), SlotReader("a")
    frame = np.arange(70_000, dtype=np.uint8)

    def view(reference):
        return reader.view(reference, np.dtype(np.uint8), frame.shape, 0)

    try:
        first = pool.put(frame, consumers=1)

        def behind():  # a consumer that reads the slot late, then lets go of it
            time.sleep(0.2)
            view(first)

        thread = threading.Thread(target=behind)
        thread.start()
        second = pool.put(frame, consumers=1)  # waits for the slot instead of sending bytes
        thread.join()
        assert second is not None and second["m"] == first["m"]

        kept = view(second)  # a consumer that keeps its frame: waiting would be pointless
        polls = []
        assert pool.put(frame, consumers=1, abort=lambda: polls.append(1) or False) is None
        assert polls == []
        del kept

        assert pool.put(frame, consumers=1) is not None  # never read: its consumer died
        assert pool.put(frame, consumers=1, abort=lambda: polls.append(1) or len(polls) > 3) is None
        assert len(polls) == 4
        assert pool.put(frame, consumers=1, abort=lambda: polls.append(1) or True) is None
        assert len(polls) == 4  # after a wait in vain, bytes go at once until a slot is free
    finally:
        pool.close()
