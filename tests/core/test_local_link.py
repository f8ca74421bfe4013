"""Same-host edges over plain Unix sockets: whole messages of any size in order, reconnection to a
restarted producer, the end-of-stream receipt, and peers of another user refused on both sides."""

import os
import pwd
import shutil
import socket
import struct
import tempfile
import threading
import time

import numpy as np
import pytest
from chimerapy.net import local_link, wire
from chimerapy.net.endpoints import PrivateDirectory
from chimerapy.net.local_link import Flusher, LocalInlet, LocalOutlet

pytestmark = pytest.mark.timeout(60)


def read_until(inlet, count, timeout=20.0):
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        inlet.reconnect()
        messages += inlet.read(64)
        time.sleep(0.0005)
    return messages


def send_all(outlet, messages, timeout=20.0):
    deadline = time.monotonic() + timeout
    for frames in messages:
        while not outlet.send(frames):
            assert time.monotonic() < deadline, "the consumer never made room"
            time.sleep(0.0002)
    while not outlet.flush():  # the rest of a message written in part
        assert time.monotonic() < deadline, "the consumer never took the rest"
        time.sleep(0.0002)


def test_messages_of_every_size_arrive_whole_and_in_order():
    """Messages far larger than the socket's buffer go out in parts, between small ones."""
    assert_arrive_whole_and_in_order([10, 70_000, 8_000_000, 3, 300_000, 1_000] * 5, np.random.default_rng(1))


def test_small_messages_that_straddle_the_read_buffers_end_arrive_whole_and_stay_intact():
    """Many small messages of every size up to the small limit: the consumer's read buffer fills
    to its end mid-message again and again; each message read earlier keeps its bytes."""
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, local_link.SMALL_MESSAGE - 64, 400)
    assert sum(sizes) > 20 * local_link._READ_SIZE  # the buffer wraps many times
    assert_arrive_whole_and_in_order(sizes, rng)


def assert_arrive_whole_and_in_order(sizes, rng):
    """Send a message of each size (its index and random bytes) from another thread; check every
    one only after all were read, so a message whose bytes changed later is caught."""
    folder = PrivateDirectory()
    outlet = LocalOutlet(folder.endpoint())
    inlet = LocalInlet(outlet.address)
    sent = [[struct.pack("<I", index), rng.integers(0, 255, size, np.uint8)] for index, size in enumerate(sizes)]
    try:
        assert outlet.joined()
        sender = threading.Thread(target=send_all, args=(outlet, sent))
        sender.start()
        received = read_until(inlet, len(sent))
        sender.join(20)
        assert len(received) == len(sent)
        for (index, array), frames in zip(sent, received, strict=True):
            assert bytes(frames[0]) == index
            assert np.array_equal(np.frombuffer(frames[1], np.uint8), array)
    finally:
        inlet.close()
        outlet.close()
        folder.close()


def test_a_large_message_arrives_whole_without_waiting_for_the_next_send():
    """The flusher writes the rest of a message larger than the socket's buffer as the consumer
    reads: the producer sends once and does nothing else."""
    folder, flusher = PrivateDirectory(), Flusher()
    outlet = LocalOutlet(folder.endpoint(), flusher)
    inlet = LocalInlet(outlet.address)
    frame = np.arange(6_000_000, dtype=np.uint8)
    try:
        assert outlet.send([b"small"])  # fits the socket: the flusher has no thread, no pipe yet
        assert [bytes(f[0]) for f in read_until(inlet, 1)] == [b"small"]
        assert flusher._thread is None
        descriptors = len(os.listdir("/proc/self/fd"))
        assert outlet.send([b"frame", frame])
        assert len(os.listdir("/proc/self/fd")) == descriptors + 2  # the flusher's wake-up pipe
        assert not outlet.send([b"next"])  # the edge is full until the first is out
        (received,) = read_until(inlet, 1)
        assert bytes(received[0]) == b"frame" and np.array_equal(np.frombuffer(received[1], np.uint8), frame)
        deadline = time.monotonic() + 5
        while not outlet.flush():
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert outlet.send([b"next"])
        assert [bytes(f[0]) for f in read_until(inlet, 1)] == [b"next"]
    finally:
        flusher.close()
        inlet.close()
        outlet.close()
        folder.close()


def test_a_restarted_producer_is_reached_again_at_its_path():
    folder = PrivateDirectory()
    address = folder.endpoint()
    first = LocalOutlet(address)
    inlet = LocalInlet(address)
    try:
        send_all(first, [[b"one"]])
        assert [bytes(f[0]) for f in read_until(inlet, 1)] == [b"one"]
        first.close()  # the producer dies ...
        assert read_until(inlet, 1, timeout=0.3) == [] and inlet.pollable() is None
        second = LocalOutlet(address)  # ... and its successor binds the same path
        try:
            deadline = time.monotonic() + 10
            while not second.joined():
                assert time.monotonic() < deadline, "the consumer never reconnected"
                inlet.reconnect()
                time.sleep(0.01)
            send_all(second, [[b"two"]])
            assert [bytes(f[0]) for f in read_until(inlet, 1)] == [b"two"]
            first.close()  # closing the dead one again leaves its successor's path alone
            assert os.path.exists(address[len("ipc://"):])
        finally:
            second.close()
        assert not os.path.exists(address[len("ipc://"):])
    finally:
        first.close()
        inlet.close()
        folder.close()


def test_the_producer_is_done_only_once_its_consumer_took_the_end():
    folder = PrivateDirectory()
    outlet = LocalOutlet(folder.endpoint())
    inlet = LocalInlet(outlet.address)
    try:
        big = np.ones(4_000_000, np.uint8)
        assert outlet.send([b"last", big])  # more than the socket holds: part of it waits here
        assert not outlet.done()
        done_at = []

        def until_done():
            while not outlet.done():
                time.sleep(0.001)
            done_at.append(time.monotonic())

        closer = threading.Thread(target=until_done, daemon=True)
        closer.start()
        assert len(read_until(inlet, 1)) == 1
        time.sleep(0.3)
        assert not done_at  # everything arrived, but the receipt has not
        acknowledged_at = time.monotonic()
        inlet.acknowledge_end()
        closer.join(5)
        assert done_at and done_at[0] >= acknowledged_at
    finally:
        inlet.close()
        outlet.close()
        folder.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the user nobody needs root")
def test_a_peer_of_another_user_is_refused_on_both_sides():
    """Only root can reach into another user's private folder; even then neither end talks to it:
    a producer refuses root's connection, and a consumer refuses a socket root put in its folder."""
    nobody = pwd.getpwnam("nobody")
    folder = tempfile.mkdtemp()
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)  # nobody's private folder (0700)
    squat = os.path.join(folder, "squat")
    planted = wire.encode_chunk(_chunk(), seq=0, producer="src", produced_at=0.0)
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # nobody: a producer, then a consumer of root's socket
        verdict = b"?"
        try:
            os.setgid(nobody.pw_gid)
            os.setgroups([])
            os.setuid(nobody.pw_uid)
            outlet = LocalOutlet(f"ipc://{folder}/edge")
            os.write(write_fd, b"listening\n")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not outlet.joined():
                time.sleep(0.01)
            joined = outlet.joined()
            deadline = time.monotonic() + 10
            while not os.path.exists(squat) and time.monotonic() < deadline:
                time.sleep(0.01)
            inlet = LocalInlet(f"ipc://{squat}")
            deadline, got = time.monotonic() + 2, []
            while time.monotonic() < deadline:
                inlet.reconnect()
                got += inlet.read(8)
                time.sleep(0.01)
            verdict = b"joined" if joined else b"refused"
            verdict += b" connected" if inlet.pollable() is not None or got else b" refused"
        finally:
            os.write(write_fd, verdict + b"\n")
            os._exit(0)
    reader = os.fdopen(read_fd, "rb")
    os.close(write_fd)
    try:
        assert reader.readline() == b"listening\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as attacker:  # root reaches in ...
            attacker.connect(f"{folder}/edge")
            attacker.settimeout(2)
            assert attacker.recv(100) == b""  # ... and is hung up on, with nothing sent
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # root squats a socket
            server.bind(squat)
            os.chmod(squat, 0o777)
            server.listen()
            server.settimeout(5)
            peer, _ = server.accept()
            body = wire.pack(planted)
            try:
                peer.sendall(struct.pack("<Q", len(body)) + body)
            except OSError:
                pass
            peer.close()
        assert reader.readline() == b"refused refused\n"
    finally:
        os.waitpid(child, 0)
        reader.close()
        shutil.rmtree(folder, ignore_errors=True)


def _chunk():
    import chimerapy as cp

    chunk = cp.DataChunk()
    chunk.add("x", 1)
    return chunk
