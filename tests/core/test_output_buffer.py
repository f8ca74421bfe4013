"""``Node.output_buffer``: a source fills its frame in a shared-memory slot that sending hands to
the consumers without a copy; frames arrive intact, a slot is never reused while a consumer holds
it, and wherever there is no shared-memory edge the buffer is an ordinary array."""

import json
import threading
import time

import chimerapy as cp
import numpy as np
import pytest
import zmq
from chimerapy.data_chunk import DataChunk
from chimerapy.net import keys
from chimerapy.net.shm import SlotPool, SlotReader
from chimerapy.net.transport import Consumer, Publisher, Subscriber
from chimerapy.testing import NodeHarness

pytestmark = pytest.mark.timeout(120)

VGA = (480, 640, 3)


def spy_on_copies(publisher):
    """Count the frames the publisher copies into a slot (SlotPool.put)."""
    pool = publisher._pool
    original, calls = pool.put, []

    def put(array, holders, **kwargs):
        calls.append(array.nbytes)
        return original(array, holders, **kwargs)

    pool.put = put
    return calls


def send_frames(publisher, count, *, shape=VGA):
    """Fill ``count`` output buffers in place (every byte = the frame's index mod 256) and send them."""
    in_slots = 0
    for index in range(count):
        frame = publisher.output_buffer("frame", shape, np.uint8)
        in_slots += publisher._pool is not None and publisher._pool.lent_slot(frame) is not None
        frame[...] = index % 256
        chunk = cp.DataChunk()
        chunk.add("frame", frame, "image")
        chunk.add("index", index)
        publisher.send(chunk)
    publisher.end()
    return in_slots


def read_all(subscriber, check, *, deadline_s=60.0):
    deadline = time.monotonic() + deadline_s
    while not subscriber.all_ended and time.monotonic() < deadline:
        for chunk in subscriber.receive(0.05):
            check(chunk)


def intact(chunk):
    frame, index = chunk.get("frame")["value"], chunk.get("index")["value"]
    return frame.shape == VGA and bool((frame == index % 256).all())


def test_a_lent_slot_is_the_producers_until_sent_then_reused_only_after_its_consumer_let_go():
    pool, reader = SlotPool(1, per_consumer=2), SlotReader("a")
    try:
        view = pool.lend(np.dtype(np.uint8), (70_000,))
        view[:] = 7
        assert pool.lent_slot(view) is not None and pool.lent_slot(view[1:]) is None
        other = pool.put(np.zeros(70_000, np.uint8), [0])  # a copied frame never takes the lent slot
        assert other is not None and other["m"] != pool.lent_slot(view).path
        reader.view(other, np.dtype(np.uint8), (70_000,), 0)  # (read and let go at once)
        reference = pool.claim(pool.lent_slot(view), [0])
        received = reader.view(reference, np.dtype(np.uint8), (70_000,), 0)
        assert (received == 7).all() and not pool.lending
        again = pool.lend(np.dtype(np.uint8), (70_000,))  # the consumer holds the first slot: another one
        assert again is not None and not np.shares_memory(again, view)
        pool.give_back(again)
        del received  # the consumer lets go: its slot may be lent again
        assert np.shares_memory(pool.lend(np.dtype(np.uint8), (70_000,)), view)
    finally:
        pool.close()


@pytest.mark.timeout(120)
def test_frames_written_in_place_arrive_intact_at_a_fast_and_a_slow_consumer_that_keeps_frames(monkeypatch):
    as_bytes = []  # messages whose output buffers went as copies (to a consumer that keeps frames)
    detached = DataChunk.detached
    monkeypatch.setattr(DataChunk, "detached", lambda chunk, names=None: as_bytes.append(names) or detached(chunk, names))
    context = zmq.Context()
    count, kept_every = 400, 5
    publisher = Publisher(context, "src", consumers=[Consumer("fast"), Consumer("slow")])
    copies = spy_on_copies(publisher)
    fast, slow = Subscriber(context, "fast"), Subscriber(context, "slow")
    fast.connect("src", publisher.addresses["fast"])
    slow.connect("src", publisher.addresses["slow"])
    seen = {"fast": [], "slow": []}
    bad = []
    kept = []  # (index, frame) the slow consumer keeps past its step

    def check(name, chunk):
        index = chunk.get("index")["value"]
        seen[name].append(index)
        if not intact(chunk):
            bad.append((name, index))

    def slow_check(chunk):
        check("slow", chunk)
        if chunk.get("index")["value"] % kept_every == 0:
            kept.append((chunk.get("index")["value"], chunk.get("frame")["value"]))
        time.sleep(0.002)  # slower than the producer: backpressure

    readers = [threading.Thread(target=read_all, args=(fast, lambda c: check("fast", c))),
               threading.Thread(target=read_all, args=(slow, slow_check))]
    try:
        assert publisher.wait_for_subscribers(10) == set()
        for reader in readers:
            reader.start()
        in_slots = send_frames(publisher, count)
        for reader in readers:
            reader.join(90)
        assert seen["fast"] == list(range(count)) and seen["slow"] == list(range(count))
        assert bad == []
        # frames kept across steps never changed while the source went on writing into slots
        changed = [index for index, frame in kept if not (frame == index % 256).all()]
        assert len(kept) == count // kept_every and changed == []
        # every frame was written in a slot and none was copied into one; the fast consumer got
        # them all in place, the slow one as bytes (copies) while it held its whole budget
        # (a frame asked for while the consumers still held every slot, which a loaded machine
        # can cause, is an ordinary array, sent as any array is: intact, as checked above)
        assert in_slots >= count // 2 and len(copies) <= count - in_slots  # 0.8 to 1.0 of them, by the load
        assert 0 < len(as_bytes) < count
        assert len(publisher._pool._slots) <= publisher._pool.max_slots + 2
    finally:
        fast.close()
        slow.close()
        publisher.close()
        context.term()


def test_a_latest_only_edge_and_a_lossless_edge_both_get_intact_frames():
    context = zmq.Context()
    count = 200
    publisher = Publisher(context, "src", consumers=[Consumer("all"), Consumer("live", "latest")])
    every, live = Subscriber(context, "all"), Subscriber(context, "live")
    every.connect("src", publisher.addresses["all"])
    live.connect("src", publisher.addresses["live"], latest_only=True)
    seen, bad = {"all": [], "live": []}, []

    def check(name):
        def on(chunk):
            seen[name].append(chunk.get("index")["value"])
            if not intact(chunk):
                bad.append((name, chunk.get("index")["value"]))
        return on

    readers = [threading.Thread(target=read_all, args=(every, check("all"))),
               threading.Thread(target=read_all, args=(live, check("live")))]
    try:
        assert publisher.wait_for_subscribers(10) == set()
        for reader in readers:
            reader.start()
        assert send_frames(publisher, count) == count
        for reader in readers:
            reader.join(90)
        assert seen["all"] == list(range(count)) and bad == []
        assert seen["live"] and seen["live"] == sorted(seen["live"])  # the newest of each burst
    finally:
        every.close()
        live.close()
        publisher.close()
        context.term()


@pytest.mark.parametrize("case", ["no-shm-edge", "shm-off", "small"])
def test_without_a_shared_memory_edge_the_buffer_is_an_ordinary_array_and_frames_arrive(case, monkeypatch):
    if case == "shm-off":
        monkeypatch.setenv("CHIMERAPY_SHM", "off")
    context = zmq.Context()
    consumer = Consumer("sink", "latest") if case == "no-shm-edge" else Consumer("sink")
    shape = (100, 100) if case == "small" else VGA  # 10 KB: under the shared-memory threshold
    publisher = Publisher(context, "src", consumers=[consumer])
    subscriber = Subscriber(context, "sink")
    subscriber.connect("src", publisher.addresses["sink"], latest_only=case == "no-shm-edge")
    got, bad = [], []

    def check(chunk):
        frame, index = chunk.get("frame")["value"], chunk.get("index")["value"]
        got.append(index)
        if frame.shape != shape or not (frame == index % 256).all():
            bad.append(index)

    reader = threading.Thread(target=read_all, args=(subscriber, check))
    try:
        assert publisher.wait_for_subscribers(10) == set()
        reader.start()
        assert send_frames(publisher, 50, shape=shape) == 0  # never a slot
        reader.join(60)
        assert got and bad == []
        if case != "no-shm-edge":
            assert got == list(range(50))
    finally:
        subscriber.close()
        publisher.close()
        context.term()


def test_a_buffer_taken_and_not_sent_is_given_back():
    context = zmq.Context()
    publisher = Publisher(context, "src", consumers=[Consumer("sink")])
    try:
        first = publisher.output_buffer("frame", VGA)
        second = publisher.output_buffer("frame", VGA)  # the same record again: the first goes back
        assert np.shares_memory(first, second)
        publisher.output_buffer("other", VGA)
        publisher.give_back()  # the end of a step: nothing taken is kept
        assert not publisher._pool.lending
        for _ in range(50):
            publisher.output_buffer("frame", VGA)
            publisher.give_back()
        assert len(publisher._pool._slots) == 2  # given back slots are lent again, not new ones
    finally:
        publisher.close()
        context.term()


class InPlace(cp.Node):
    """VGA frames filled in place, every byte the frame number (mod 256), as fast as possible."""

    def __init__(self, name, count=300):
        super().__init__(name)
        self.count = count

    def prep(self):
        self.index = 0
        self.in_slots = 0

    def step(self):
        if self.index >= self.count:
            time.sleep(0.01)
            return None
        frame = self.output_buffer("frame", VGA)
        if self.index % 7 == 3:  # taken and not sent: given back after the step
            self.index += 1
            return None
        frame[...] = self.index % 256
        chunk = cp.DataChunk()
        chunk.add("frame", frame, "image")
        chunk.add("index", self.index)
        self.index += 1
        return chunk


class Keeper(cp.Node):
    """Keeps every frame, checks each on arrival and all of them again at the end."""

    def prep(self):
        self.kept, self.bad = [], []

    def step(self, data_chunks):
        chunk = data_chunks["src"]
        frame, index = chunk.get("frame")["value"], chunk.get("index")["value"]
        if not (frame == index % 256).all():
            self.bad.append(index)
        self.kept.append((index, frame))

    def teardown(self):
        changed = [i for i, frame in self.kept if not (frame == i % 256).all()]
        self.save_json("check", {"indices": [i for i, _ in self.kept], "bad": self.bad, "changed": changed})


class Checker(Keeper):
    """Checks each frame on arrival and keeps none."""

    def step(self, data_chunks):
        super().step(data_chunks)
        self.kept[-1] = (self.kept[-1][0], np.full(VGA, self.kept[-1][0] % 256, np.uint8)[:1])


@pytest.mark.timeout(150)
def test_a_pipeline_source_writing_in_place_delivers_every_frame_intact(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    source, keeper, checker = InPlace("src"), Keeper("keeper"), Checker("checker")
    graph.add_edge(source, keeper)
    graph.add_edge(source, checker)
    assert manager.commit_graph(graph, {"w1": ["src", "keeper", "checker"]})
    manager.start()
    expected = [i for i in range(300) if i % 7 != 3]
    deadline = time.monotonic() + 90
    while (min(manager.node_stats.get(n, {}).get("steps", 0) for n in ("keeper", "checker")) < len(expected)
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert manager.stop()
    errors = [e.remote_traceback for e in manager.errors]
    for name in ("keeper", "checker"):
        check = json.loads((manager.session.path / "w1" / name / "check.jsonl").read_text())["data"]
        assert check["indices"] == expected and check["bad"] == [] and check["changed"] == [], errors[:1]
        assert manager.final_stats[name]["inputs"]["src"]["lost"] == 0


class Painter(cp.Node):
    def step(self):
        frame = self.output_buffer("frame", (120, 160, 3))
        frame[...] = 9
        chunk = cp.DataChunk()
        chunk.add("frame", frame, "image")
        return chunk


def test_debug_step_and_the_testing_harness_get_an_ordinary_array():
    node = Painter("painter", debug="step")
    try:
        chunk = node.debug_step()
        frame = chunk.get("frame")["value"]
        assert frame.shape == (120, 160, 3) and (frame == 9).all() and frame.flags.writeable
    finally:
        node.shutdown()
    with NodeHarness(Painter("painter")) as harness:
        out = harness.step()
        assert (out.get("frame")["value"] == 9).all()


def test_output_buffer_needs_a_record_name_and_a_running_node():
    with pytest.raises(cp.StateError, match="output_buffer"):
        Painter("idle").output_buffer("frame", (4, 4))
    node = Painter("named", debug="step")
    try:
        with pytest.raises(ValueError, match="record name"):
            node.output_buffer("", (4, 4))
    finally:
        node.shutdown()


@pytest.mark.parametrize("content_type", ["other", "image"])
def test_a_consumer_on_another_host_and_one_on_this_host_both_get_intact_frames(content_type):
    context = zmq.Context()
    producer, far_key = keys.new_keypair(), keys.new_keypair()
    publisher = Publisher(context, "src", keypair=producer,
                          consumers=[Consumer("near"), Consumer("far", "lossless-remote", far_key.public)])
    near, far = Subscriber(context, "near"), Subscriber(context, "far", keypair=far_key)
    near.connect("src", publisher.addresses["near"])
    far.connect("src", publisher.addresses["far"], server_key=producer.public)
    seen, bad = {"near": [], "far": []}, []

    def check(name):
        def on(chunk):
            frame, index = chunk.get("frame")["value"], chunk.get("index")["value"]
            seen[name].append(index)
            exact = name == "near" or content_type == "other"  # JPEG toward the other host
            error = np.abs(frame.astype(np.int16) - index % 256).max()
            if frame.shape != VGA or (error > 0 if exact else error > 8):
                bad.append((name, index))
        return on

    readers = [threading.Thread(target=read_all, args=(near, check("near"))),
               threading.Thread(target=read_all, args=(far, check("far")))]
    try:
        assert publisher.wait_for_subscribers(10) == set()
        for reader in readers:
            reader.start()
        for index in range(60):
            frame = publisher.output_buffer("frame", VGA)
            assert publisher._pool.lent_slot(frame) is not None
            frame[...] = index % 256
            chunk = cp.DataChunk()
            chunk.add("frame", frame, content_type)
            chunk.add("index", index)
            publisher.send(chunk)
        publisher.end()
        for reader in readers:
            reader.join(60)
        assert seen["near"] == list(range(60)) and seen["far"] == list(range(60)) and bad == []
    finally:
        near.close()
        far.close()
        publisher.close()
        context.term()


def test_a_debug_stream_sends_frames_from_an_ordinary_array():
    node = Painter("streamer", debug="stream")
    context = zmq.Context()
    viewer = Subscriber(context, "viewer")
    try:
        node.run(blocking=False)
        viewer.connect("streamer", node.debug_address)
        deadline, got = time.monotonic() + 20, []
        while not got and time.monotonic() < deadline:
            got = viewer.receive(0.2)
        assert got and all((chunk.get("frame")["value"] == 9).all() for chunk in got)
        assert node._runtime.publisher._pool is None  # no shared-memory edge: nothing lent
    finally:
        node.shutdown()
        viewer.close()
        context.term()
