"""Hostile input: fuzzed control messages and garbage on data sockets are refused, counted and
survived; the Manager, Workers and nodes keep working."""

import asyncio
import json
import socket
import time

import aiohttp
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chimerapy as cp
from chimerapy.net import control, wire
from chimerapy.net.transport import Subscriber
from chimerapy.worker.join import open_manager_socket
from support.nodes import CountingSource, Doubler

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
MESSAGES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    JSON.map(json.dumps),
    st.builds(lambda kind, data, rid: json.dumps({"type": kind, "data": data, "id": rid}),
              st.sampled_from(sorted(control.REQUIRED_FIELDS) + ["x"]), JSON, JSON),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_control_decoder_refuses_with_protocol_error_only(raw):
    try:
        envelope = control.decode(raw)
    except cp.ProtocolError:
        return
    assert envelope.type in control.REQUIRED_FIELDS  # anything accepted is well formed
    assert all(name in envelope.data for name in control.REQUIRED_FIELDS[envelope.type])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_data_decoder_refuses_with_protocol_error_only(frames):
    try:
        wire.decode(frames)
    except cp.ProtocolError:
        pass


@pytest.mark.timeout(120)
def test_manager_survives_malformed_truncated_oversized_and_out_of_order_messages(cluster, tmp_path):
    manager, _ = cluster("w1")

    async def joined(http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        """A socket that passed the pin and the token proof, as a Worker's does."""
        ws, _ = await open_manager_socket(http, manager.host, manager.port, token=manager.token,
                                          pin=manager.fingerprint, timeout=10)
        return ws

    async def attack():
        async with aiohttp.ClientSession() as http:
            # a peer that registers properly and then misbehaves
            async with await joined(http) as ws:
                await ws.send_str(json.dumps({"type": "register", "id": 1, "data": {"name": "fuzzer", "id": "f"}}))
                assert json.loads((await ws.receive()).data)["ok"] is True
                hostile = [
                    "not json", "{", '{"type": "stats"', "[]", '{"type": "launch"}',
                    json.dumps({"type": "stats", "data": {}}),                       # missing field
                    json.dumps({"type": "reply", "reply_to": 999, "ok": True}),       # reply to nothing
                    json.dumps({"type": "start", "id": 5, "data": {}}),               # a Manager-only request
                    json.dumps({"type": "node_error", "data": {"node": 1, "phase": [], "traceback": {}}}),
                    json.dumps({"type": "log", "data": {"records": ["x", 1, None]}}),
                    json.dumps({"type": "stats", "data": {"nodes": {"ghost": {"rate": "fast"}}}}),
                    "x" * (2 * 1024 * 1024),                                          # large garbage
                ]
                for message in hostile:
                    await ws.send_str(message)
                await ws.send_bytes(b"\x00\xff" * 100)
                replies = []
                while True:
                    try:
                        message = await ws.receive(timeout=1.0)
                    except asyncio.TimeoutError:
                        break
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    replies.append(json.loads(message.data))
                assert any(r.get("reply_to") == 5 and r["ok"] is False and "unexpected request" in r["error"]
                           for r in replies)
            # a registration missing its fields is refused with the reason
            async with await joined(http) as ws:
                await ws.send_str(json.dumps({"type": "register", "id": 1, "data": {"name": "late"}}))
                reply = json.loads((await ws.receive()).data)
                assert reply["ok"] is False and "missing field" in reply["error"]

    asyncio.run(attack())
    # the cluster still works end to end
    graph = cp.Graph()
    graph.add_edge(CountingSource("src", period=0.01), Doubler("double"))
    assert manager.commit_graph(graph, {"w1": ["src", "double"]})
    manager.start()
    time.sleep(0.5)
    manager.stop()
    assert manager.final_stats["double"]["inputs"]["src"]["received"] == manager.final_stats["src"]["outputs"] > 0


def test_subscriber_counts_and_drops_garbage_frames():
    context = zmq.Context.instance()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.LINGER, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    subscriber = Subscriber(context, "victim")
    subscriber.connect("cam", f"tcp://127.0.0.1:{port}")
    try:
        chunk = cp.DataChunk()
        chunk.add("x", 1)

        def frames_of(producer, seq):
            return [bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f
                    for f in wire.encode_chunk(chunk, seq=seq, producer=producer, produced_at=time.time())]

        deadline = time.monotonic() + 10
        while not subscriber.receive(0.05):  # until the connection is up: probes with seq 0
            assert time.monotonic() < deadline, "the subscriber never connected"
            publisher.send_multipart(frames_of("cam", 0))
        good = frames_of("cam", 1)
        foreign = [bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f
                   for f in wire.encode_chunk(chunk, seq=0, producer="stranger", produced_at=time.time())]
        for frames in ([b"garbage"], [b"CPY1{broken"], foreign, good, [b"\x00" * 1000, b"x"]):
            publisher.send_multipart(frames)
        received = []
        deadline = time.monotonic() + 5
        while subscriber.garbage < 4 and time.monotonic() < deadline:
            received += subscriber.receive(0.2)
        received += subscriber.receive(0.2)
        assert [(c.seq, c.get("x")["value"]) for c in received if c.seq == 1] == [(1, 1)]
        assert subscriber.garbage == 4  # 2 malformed, 1 from a producer it never subscribed to, 1 binary noise
    finally:
        subscriber.close()
        publisher.close()


@pytest.mark.timeout(120)
def test_raw_garbage_on_a_node_data_port_does_not_stall_the_graph(cluster, tmp_path):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(CountingSource("src", period=0.005), Doubler("double"))
    assert manager.commit_graph(graph, {"w1": ["src", "double"]})
    manager.start()
    path = _publisher_path(worker, "src", "double")
    for payload in (b"\x00" * 64, b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)) * 40):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(5)
            raw.connect(path)
            raw.sendall(payload)
            time.sleep(0.1)
    time.sleep(0.5)
    manager.stop()
    stats = manager.final_stats
    assert stats["double"]["inputs"]["src"]["lost"] == 0
    assert stats["double"]["inputs"]["src"]["received"] == stats["src"]["outputs"] > 50


def _publisher_path(worker, node, consumer):
    """The ipc path of the node's edge toward ``consumer`` (same host: a Unix socket)."""
    process = next(p for p in worker.supervisor.nodes.values() if p.name == node)
    address = process.addresses[consumer]
    assert address.startswith("ipc://"), address
    return address[len("ipc://"):]
