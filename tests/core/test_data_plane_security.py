"""The data plane authenticates its peers: a process without the session's keys that squats a dead
producer's port, or connects to a publisher, gets nothing and runs nothing; on one host the
endpoints and the shared memory are closed to other users; a stalled consumer slows only itself."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import chimerapy as cp
import numpy as np
import pytest
import zmq
from chimerapy.net import keys, wire
from chimerapy.net.transport import Consumer, Publisher, Subscriber

pytestmark = pytest.mark.timeout(90)


class Marker:
    """Unpickling this creates a file: proof that an attacker's pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def chunk_of(**records):
    chunk = cp.DataChunk()
    for name, value in records.items():
        chunk.add(name, value)
    return chunk


def receive_until(subscriber, count, timeout=10.0):
    received, deadline = [], time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        received += subscriber.receive(0.05)
    return received


ATTACKER = textwrap.dedent("""
    import json, sys, time, zmq, zmq.utils.monitor
    address, payload_file, curve = sys.argv[1], sys.argv[2], sys.argv[3] == "curve"
    frames = json.load(open(payload_file))
    context = zmq.Context()
    socket = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.LINGER, 0)
    if curve:  # a CURVE server with keys of its own: not the producer's
        public, secret = zmq.curve_keypair()
        socket.curve_secretkey, socket.curve_publickey, socket.curve_server = secret, public, True
    monitor = socket.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    for _ in range(100):
        try:
            socket.bind(address)
            break
        except zmq.ZMQError:
            time.sleep(0.05)
    print("bound", flush=True)
    accepted = handshakes = 0
    deadline = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < deadline:
        socket.send_multipart([bytes.fromhex(f) for f in frames])
        while monitor.poll(0):
            event = zmq.utils.monitor.recv_monitor_message(monitor)["event"]
            accepted += event == zmq.EVENT_ACCEPTED
            handshakes += event == zmq.EVENT_HANDSHAKE_SUCCEEDED
        time.sleep(0.01)
    print(json.dumps({"accepted": accepted, "handshakes": handshakes}), flush=True)
""")


@pytest.mark.parametrize("attacker_curve", [False, True], ids=["plain", "curve-with-its-own-keys"])
def test_a_squatter_on_a_dead_producers_port_gets_nothing_and_runs_nothing(tmp_path, attacker_curve):
    context = zmq.Context()
    producer, consumer = keys.new_keypair(), keys.new_keypair()
    publisher = Publisher(context, "src", consumers=[Consumer("sink", "lossless-remote", consumer.public)],
                          keypair=producer)
    subscriber = Subscriber(context, "sink", keypair=consumer)
    address = publisher.addresses["sink"]
    assert address.startswith("tcp://127.0.0.1:")
    subscriber.connect("src", address, server_key=producer.public)
    try:
        assert publisher.wait_for_subscribers(10) == set()
        publisher.send(chunk_of(x=1))
        assert [c.get("x")["value"] for c in receive_until(subscriber, 1)] == [1]
        publisher.close()  # the producer dies; a process without the keys takes its port

        marker = tmp_path / "pwned"
        frames = wire.encode_chunk(chunk_of(x=Marker(str(marker))), seq=5, producer="src", produced_at=time.time())
        assert b"pwned" in bytes(memoryview(frames[1]).cast("B"))  # a real pickle bomb for this subscriber
        payload = tmp_path / "frames.json"
        payload.write_text(json.dumps([bytes(memoryview(f).cast("B")).hex() for f in frames]))
        attacker = subprocess.run(
            [sys.executable, "-c", ATTACKER, address, str(payload), "curve" if attacker_curve else "plain", "4"],
            capture_output=True, text=True, timeout=60, check=False)
        assert attacker.returncode == 0, attacker.stderr
        seen = []
        seen += subscriber.receive(0.5)
        report = json.loads(attacker.stdout.splitlines()[-1])
        assert attacker.stdout.startswith("bound")
        assert report["accepted"] >= 1  # the consumer did reconnect to the squatter ...
        assert report["handshakes"] == 0  # ... but never completed a handshake with it
        assert seen == [] and subscriber.garbage == 0  # nothing reached the decoder
        assert not marker.exists()
        # the control: the same frames do run their pickle once they reach a decoder
        wire.decode(frames).chunk.get("x")["value"].close()
        assert marker.exists()
    finally:
        subscriber.close()
        publisher.close()
        context.term()


SNOOPER = textwrap.dedent("""
    import sys, time, zmq
    address, server_key, mode = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if mode == "curve":  # knows the producer's public key, but is not a consumer of this session
        public, secret = zmq.curve_keypair()
        socket.curve_secretkey, socket.curve_publickey, socket.curve_serverkey = secret, public, server_key
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(address)
    print("connected", flush=True)
    got = 0
    deadline = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < deadline:
        if socket.poll(50):
            socket.recv_multipart()
            got += 1
    print(got, flush=True)
""")


@pytest.mark.parametrize("mode", ["plain", "curve"])
def test_a_process_without_the_keys_that_connects_to_a_publisher_gets_no_frame(mode):
    context = zmq.Context()
    producer, consumer = keys.new_keypair(), keys.new_keypair()
    publisher = Publisher(context, "src", consumers=[Consumer("sink", "lossless-remote", consumer.public)],
                          keypair=producer)
    address = publisher.addresses["sink"]
    snooper = subprocess.Popen([sys.executable, "-c", SNOOPER, address, producer.public, mode, "3"],
                               stdout=subprocess.PIPE, text=True)
    subscriber = Subscriber(context, "sink", keypair=consumer)
    try:
        assert snooper.stdout.readline().strip() == "connected"
        subscriber.connect("src", address, server_key=producer.public)
        assert publisher.wait_for_subscribers(10) == set()
        sent = 0
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            publisher.send(chunk_of(frame=np.full(1000, 7, np.uint8)))
            sent += 1
            time.sleep(0.01)
        received = receive_until(subscriber, sent)
        assert len(received) == sent > 50  # the session's consumer got every frame
        out, _ = snooper.communicate(timeout=30)
        assert int(out.split()[-1]) == 0  # the snooper got none
        if mode == "curve":  # its handshake reached the ZAP check and was refused there
            assert sum(keys.authenticator(context).refused.values()) >= 1
    finally:
        snooper.kill()
        snooper.wait()
        subscriber.close()
        publisher.close()
        context.term()


def test_a_tcp_input_without_the_producers_key_is_refused_before_connecting():
    from chimerapy.node.runtime import InputSpec, NodeRuntime

    node = cp.Node("sink")
    runtime = NodeRuntime(node, context=zmq.Context.instance(), host="127.0.0.1", directory="/tmp", inputs=["src"])
    try:
        with pytest.raises(ValueError, match="no producer key"):
            runtime.connect([InputSpec("src", "tcp://127.0.0.1:5555")])
    finally:
        runtime.close()


def test_a_consumer_that_never_reads_does_not_slow_another_consumer_of_the_producer():
    context = zmq.Context()
    count = 600
    publisher = Publisher(context, "src", consumers=[Consumer("healthy"), Consumer("stuck")], stall_patience=0.5)
    healthy, stuck = Subscriber(context, "healthy"), Subscriber(context, "stuck")
    healthy.connect("src", publisher.addresses["healthy"])
    stuck.connect("src", publisher.addresses["stuck"])  # connected, subscribed, never reads
    received = []

    def read():  # the healthy consumer, in a thread of its own (it is a process of its own in a graph)
        deadline = time.monotonic() + 60
        while not healthy.all_ended and time.monotonic() < deadline:
            for chunk in healthy.receive(0.05):
                assert chunk.get("frame")["value"][0, 0, 0] == chunk.get("index")["value"] % 256
                received.append(chunk)

    reader = threading.Thread(target=read)
    try:
        assert publisher.wait_for_subscribers(10) == set()
        reader.start()
        for index in range(count):  # large frames (shared memory) and small values (bytes)
            publisher.send(chunk_of(frame=np.full((480, 640, 3), index % 256, np.uint8), index=index))
        publisher.end()
        reader.join(60)
        assert [c.get("index")["value"] for c in received] == list(range(count))
        edge = healthy.edges["src"]
        assert edge.lost == 0 and edge.received == count
        stats = publisher.stats()
        assert stats["healthy"] == {"sent": count + 1, "dropped": 0, "stalls": 0, "stalled": False}
        assert stats["stuck"]["stalled"] and stats["stuck"]["stalls"] == 1  # waited for once, then dropped
        assert stats["stuck"]["dropped"] > count / 2
        assert publisher._pool.held(1) <= publisher._pool.per_consumer  # it holds its own budget only
        # what the stalled consumer gets when it reads again: what fit in its queue, gaps counted
        late = receive_until(stuck, 1000, timeout=3)
        assert 0 < len(late) < count and stuck.edges["src"].lost > 0
        assert stuck.edges["src"].lost + stuck.edges["src"].received <= count
    finally:
        healthy.close()
        stuck.close()
        publisher.close()
        context.term()


def test_a_slow_consumer_still_gets_everything_through_backpressure():
    context = zmq.Context()
    publisher = Publisher(context, "src", consumers=[Consumer("slow")], stall_patience=5.0)
    slow = Subscriber(context, "slow")
    slow.connect("src", publisher.addresses["slow"])
    received = []

    def read():
        while not slow.all_ended:
            for chunk in slow.receive(0.05):
                received.append(chunk.get("index")["value"])
                time.sleep(0.002)  # slower than the producer

    try:
        assert publisher.wait_for_subscribers(10) == set()
        reader = threading.Thread(target=read)
        reader.start()
        for index in range(300):
            publisher.send(chunk_of(frame=np.zeros(100_000, np.uint8), index=index))
        publisher.end()
        reader.join(60)
        assert received == list(range(300)) and publisher.stats()["slow"]["dropped"] == 0
        assert publisher.blocked_seconds > 0  # it did push back
    finally:
        slow.close()
        publisher.close()
        context.term()


def test_a_subscriber_accepts_only_its_connections_producer():
    context = zmq.Context()
    publisher = Publisher(context, "src", consumers=[Consumer("sink")])
    subscriber = Subscriber(context, "sink")
    subscriber.connect("src", publisher.addresses["sink"])
    subscriber.edges["other"] = subscriber.edges["src"].__class__()  # it also follows "other"
    try:
        assert publisher.wait_for_subscribers(10) == set()
        marker_chunk = chunk_of(x=("a", "pickled", "tuple"))
        publisher.name = "other"  # a session node posing as another node on this connection
        publisher.send(marker_chunk)
        time.sleep(0.2)
        assert subscriber.receive(0.5) == [] and subscriber.garbage == 1
    finally:
        subscriber.close()
        publisher.close()
        context.term()


def test_a_pickle_is_never_decoded_from_a_message_naming_another_producer(tmp_path):
    marker = tmp_path / "pwned"
    frames = wire.encode_chunk(chunk_of(x=Marker(str(marker))), seq=0, producer="mallory", produced_at=0.0)
    with pytest.raises(cp.ProtocolError, match="mallory"):
        wire.decode(frames, expected_producer="src")
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_cannot_reach_the_endpoints_or_the_shared_memory(cluster, tmp_path):
    import pwd

    from support.nodes import ValuesSource

    manager, (worker,) = cluster("w1")
    frames = [np.full((480, 640, 3), i, np.uint8) for i in range(3)]
    graph = cp.Graph()
    graph.add_edge(ValuesSource("cam", frames, content_type="image"), HoldsFrames("holder"))
    assert manager.commit_graph(graph, {"w1": ["cam", "holder"]})
    manager.start()
    cam = next(p for p in worker.supervisor.nodes.values() if p.name == "cam")
    deadline = time.monotonic() + 30
    segments = []
    while not segments and time.monotonic() < deadline:
        segments = [f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if n.startswith(f"chimerapy-{cam.pid}-")]
        time.sleep(0.05)
    assert segments, (manager.session.path / "chimerapy.log").read_text()[-3000:]
    endpoint = cam.addresses["holder"][len("ipc://"):]
    probe = textwrap.dedent("""
        import json, os, socket, sys
        results = {}
        for path in sys.argv[2:]:
            try:
                open(path, "rb").read(1)
                results[path] = "read"
            except PermissionError:
                results[path] = "refused"
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            results["endpoint"] = "connected"
        except PermissionError:
            results["endpoint"] = "refused"
        try:
            os.listdir(os.path.dirname(sys.argv[1]))
            results["folder"] = "listed"
        except PermissionError:
            results["folder"] = "refused"
        try:  # squat a socket next to the node's (a would-be producer for its consumers)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(os.path.dirname(sys.argv[1]), "squat"))
            results["bind"] = "bound"
        except PermissionError:
            results["bind"] = "refused"
        print(json.dumps({"uid": os.getuid(), **results}))
    """)
    nobody = pwd.getpwnam("nobody").pw_uid

    def as_nobody():
        os.setgid(pwd.getpwnam("nobody").pw_gid)
        os.setgroups([])
        os.setuid(nobody)

    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)
    if python is None:
        pytest.skip("no system python that another user may run")
    result = subprocess.run([python, "-I", "-c", probe, endpoint, *segments], capture_output=True, text=True,
                            timeout=30, preexec_fn=as_nobody, cwd="/", check=False)
    report = json.loads(result.stdout)
    assert report.pop("uid") == nobody
    assert report == {**{path: "refused" for path in segments}, "endpoint": "refused", "folder": "refused",
                      "bind": "refused"}
    # and the same probe as this user does get in: the refusals come from the permissions
    mine = json.loads(subprocess.run([python, "-I", "-c", probe, endpoint, *segments], capture_output=True,
                                     text=True, timeout=30, check=False).stdout)
    assert mine["endpoint"] == "connected" and mine["folder"] == "listed" and mine["bind"] == "bound"
    os.unlink(os.path.join(os.path.dirname(endpoint), "squat"))
    assert manager.stop()


class HoldsFrames(cp.Node):
    """Keeps the frames it gets, so that their segments stay while the test looks at them."""

    def prep(self):
        self.kept = []

    def step(self, data_chunks):
        self.kept.append(data_chunks["cam"].get("v")["value"])


def test_a_publisher_fails_closed_when_it_cannot_check_keys(monkeypatch):
    context = zmq.Context()
    squatter = context.socket(zmq.REP)  # something else answers authentication in this context
    squatter.bind(keys.ZAP_ENDPOINT)
    monkeypatch.setattr(time, "sleep", lambda _: None)  # no need to wait for the endpoint here
    try:
        with pytest.raises(cp.CommitError, match="authentication handler"):
            Publisher(context, "src", consumers=[Consumer("sink", "lossless-remote", keys.new_keypair().public)],
                      keypair=keys.new_keypair())
    finally:
        squatter.close(linger=0)
        context.term()
