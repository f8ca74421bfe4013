"""Several hosts (network namespaces): images cross hosts as JPEG and stay raw within one; a Worker
cut off mid-recording is marked lost, the rest is collected, and its files arrive when it is back."""

import csv
import json
import socket
import subprocess
import sys
import threading
import time

import chimerapy as cp
import numpy as np
import pytest
from support import netns
from support.nodes import Beacon, Collector, ValuesSource, collected
from support.processes import end_process, new_marker, wait_until_gone

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

reason = netns.available()
if reason:
    if __import__("os").environ.get("CI"):
        raise RuntimeError(f"CI must be able to create network namespaces: {reason}")
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture
def two_hosts():
    hosts = netns.Hosts(2)
    yield hosts.hosts
    hosts.close()


@pytest.fixture
def remote_workers(make_manager):
    marker, env = new_marker()
    started = []

    def start(manager, host, name):
        command = host.command(sys.executable, "-m", "chimerapy.cli.worker", "--ip", host.gateway, "--port",
                               str(manager.port), "--name", name, "--fingerprint", manager.fingerprint,
                               "--reconnect-timeout", "120")
        # the token through the environment (never the command line); the Manager's certificate pinned
        started.append(subprocess.Popen(command, env={**env, "CHIMERAPY_TOKEN": manager.token}))

    yield start
    for process in started:
        end_process(process, grace=30)
    assert wait_until_gone(marker) == []


def smooth_frame():
    y, x = np.mgrid[0:480, 0:640]
    return np.stack([(x // 3) % 256, (y // 2) % 256, ((x + y) // 5) % 256], axis=2).astype(np.uint8)


def test_images_cross_hosts_as_jpeg_and_stay_raw_within_one(make_manager, remote_workers, two_hosts, tmp_path):
    manager = make_manager(host="0.0.0.0")
    alpha, beta = two_hosts
    remote_workers(manager, alpha, "alpha")
    remote_workers(manager, beta, "beta")
    assert manager.wait_for_workers(["alpha", "beta"], timeout=90)
    assert manager.workers["alpha"]["host"] == alpha.address  # each Worker is on its own host
    frame = smooth_frame()
    source = ValuesSource("camera", [frame] * 5, content_type="image")
    near, far = Collector("near", tmp_path / "near"), Collector("far", tmp_path / "far")
    graph = cp.Graph()
    graph.add_edges([(source, near), (source, far)])
    assert manager.commit_graph(graph, {"alpha": ["camera", "near"], "beta": ["far"]})
    manager.start()
    time.sleep(2.0)
    assert manager.stop()
    near_frames = [values["v"] for _, _, values, _ in collected(tmp_path / "near")]
    far_frames = [values["v"] for _, _, values, _ in collected(tmp_path / "far")]
    assert len(near_frames) == len(far_frames) == 5
    assert all(np.array_equal(f, frame) for f in near_frames)  # same host: the raw frame
    for received in far_frames:  # across hosts: JPEG, close to the frame but not identical
        assert received.shape == frame.shape and received.dtype == np.uint8
        assert not np.array_equal(received, frame)
        assert np.abs(received.astype(int) - frame).mean() < 4


def test_partitioned_worker_is_lost_then_collected_when_the_link_is_back(make_manager, remote_workers, two_hosts):
    manager = make_manager(host="0.0.0.0")
    alpha, beta = two_hosts
    remote_workers(manager, alpha, "alpha")
    remote_workers(manager, beta, "beta")
    assert manager.wait_for_workers(["alpha", "beta"], timeout=90)
    graph = cp.Graph()
    graph.add_nodes([Beacon("on_alpha"), Beacon("on_beta")])
    assert manager.commit_graph(graph, {"alpha": ["on_alpha"], "beta": ["on_beta"]})
    manager.start()
    time.sleep(2.0)
    subprocess.run(["ip", "link", "set", beta.link, "down"], check=True)  # cut beta's cable
    cut = time.monotonic()
    try:
        deadline = cut + 20
        while "beta" not in manager.status()["lost_workers"]:
            assert time.monotonic() < deadline, "the cut-off Worker was never marked lost"
            time.sleep(0.2)
        assert time.monotonic() - cut < 10  # within a few heartbeats
        assert not manager.stop()  # a falsy report: beta is missing
        meta = json.loads((manager.session.path / "meta.json").read_text())
        assert meta["collected"]["alpha"]["complete"] and not meta["collected"]["beta"]["complete"]
        assert len(list(csv.reader((manager.session.path / "alpha" / "on_alpha" / "beats.csv").open()))) > 20
    finally:
        subprocess.run(["ip", "link", "set", beta.link, "up"], check=True)
    assert manager.wait_for_workers(["beta"], timeout=90)  # it reconnects by itself
    report = manager.collect()
    assert report["beta"]["complete"]
    rows = list(csv.DictReader((manager.session.path / "beta" / "on_beta" / "beats.csv").open()))
    assert len(rows) > 20  # recorded before and during the cut, kept, then collected


PATTERN = b"CHIMERAPY-CLEAR-TEXT-PATTERN-0123456789-"


class Capture:
    """Every frame that crosses one interface, read with a raw AF_PACKET socket (root)."""

    def __init__(self, interface):
        self.socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
        self.socket.bind((interface, 0))
        self.socket.settimeout(0.1)
        self.packets = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.packets.append(self.socket.recv(262144))
            except TimeoutError:
                continue

    def stop(self) -> bytes:
        self._stop.set()
        self._thread.join(5)
        self.socket.close()
        return b"\n".join(self.packets)


PLAIN_RECEIVER = """
import sys, zmq
socket = zmq.Context().socket(zmq.PULL)
socket.bind("tcp://0.0.0.0:" + sys.argv[1])
print("ready", flush=True)
for _ in range(5):
    socket.recv()
"""

PLAIN_SENDER = """
import sys, zmq
socket = zmq.Context().socket(zmq.PUSH)
socket.setsockopt(zmq.LINGER, 5000)
socket.connect(sys.argv[1])
for _ in range(5):
    socket.send(bytes.fromhex(sys.argv[2]) * 100)
socket.close()
"""


def test_frames_between_hosts_cross_the_wire_encrypted(make_manager, remote_workers, two_hosts, tmp_path):
    manager = make_manager(host="0.0.0.0")
    alpha, beta = two_hosts
    remote_workers(manager, alpha, "alpha")
    remote_workers(manager, beta, "beta")
    assert manager.wait_for_workers(["alpha", "beta"], timeout=90)
    frame = np.frombuffer(PATTERN * 400, np.uint8)  # raw bytes across hosts (not an image: no JPEG)
    values = [frame, "text " + PATTERN.decode()] * 10
    graph = cp.Graph()
    graph.add_edge(ValuesSource("src", values), Collector("far", tmp_path / "far"))
    assert manager.commit_graph(graph, {"alpha": ["src"], "beta": ["far"]})
    capture = Capture(beta.link)  # what enters and leaves beta, the sink's host
    manager.start()
    deadline = time.monotonic() + 60
    while manager.node_stats.get("far", {}).get("steps", 0) < len(values) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert manager.stop()
    wire = capture.stop()
    received = [v["v"] for _, _, v, _ in collected(tmp_path / "far")]
    assert len(received) == len(values)
    assert all(np.array_equal(r, frame) for r in received[::2]) and received[1] == values[1]
    assert len(wire) > 10 * frame.nbytes  # the frames did cross this interface ...
    assert PATTERN not in wire and PATTERN[:20] not in wire  # ... but never in clear

    # the control: the same capture does see the pattern when it crosses unencrypted
    receiver = subprocess.Popen(beta.command(sys.executable, "-c", PLAIN_RECEIVER, "47123"),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        capture = Capture(beta.link)
        subprocess.run(alpha.command(sys.executable, "-c", PLAIN_SENDER, f"tcp://{beta.address}:47123",
                                     PATTERN.hex()), check=True, timeout=60)
        receiver.wait(timeout=30)
        assert PATTERN in capture.stop()
    finally:
        receiver.kill()
        receiver.wait()
