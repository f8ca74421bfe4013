"""Where the one-way time of a paced frame goes on this project's same-host data plane.

A probe of the path beneath the node runtime: a :class:`~chimerapy.net.transport.Publisher`
in one process, a :class:`~chimerapy.net.transport.Subscriber` in another (both forked from
this script), frames at a fixed rate (30 fps by default). Every frame is timed on the
host's monotonic clock, which both processes share:

* ``build``: the source's ``DataChunk`` (``seq``, ``t`` and the payload, as the suite's nodes);
* ``encode``: ``Publisher.send`` up to the socket send (header, copy into a shared-memory
  slot);
* ``send``: the rest of ``Publisher.send`` (the socket send call and the bookkeeping);
* ``hop``: from the send call to the subscriber's poll waking (since 2026-11-29 a Unix socket
  of the edge's own; ZeroMQ's two I/O threads before);
* ``decode``: from the wake-up to the decoded chunk (header, slot mapping, the value read);
* ``one way``: from before ``build`` to the decoded chunk.

It prints the median and the 99th percentile of each, per payload. ``--wakeups`` then
measures the bare hop alone, a 256-byte message at the same rate between two processes,
over a ZeroMQ ``ipc://`` PUB/SUB pair (the path before 2026-11-29: two I/O threads) and over an
``AF_UNIX`` datagram socket polled directly (the kernel wakes the receiver): what a
same-host notification that skips ZeroMQ's I/O threads could save. It is a measuring
script (not a test); the README's "Why two latency figures at 30 fps miss" quotes its output.

Usage: ``python -m benchmarks.latency_breakdown [--payloads dict1k,vga,hd] [--frames 300]
[--rate 30] [--wakeups]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

import chimerapy as cp
import numpy as np
import zmq
from chimerapy.net.transport import Consumer, Publisher, Subscriber

from benchmarks.probe import make_payload, touch

STAMPS = ("begin", "built", "handed", "sent", "woke", "decoded")
SUBSCRIBE_TIMEOUT_S = 10.0
RECEIVE_TIMEOUT_S = 5.0


def _source(payload_kind: str, frames: int, rate: float, stamps: Any, address_out: Connection,
            go: Any) -> None:
    """Publish ``frames`` chunks at ``rate``, stamping before and after building and sending."""
    context = zmq.Context()
    publisher = Publisher(context, "source", consumers=[Consumer("sink")])
    handed = [0.0]
    attempt = publisher._try  # the probe times the socket send inside Publisher.send

    def timed_try(edge: Any, frames: Any) -> bool:
        handed[0] = time.perf_counter()
        return attempt(edge, frames)

    publisher._try = timed_try  # type: ignore[method-assign]
    try:
        address_out.send(publisher.addresses["sink"])
        if publisher.wait_for_subscribers(SUBSCRIBE_TIMEOUT_S):
            raise RuntimeError("the subscriber did not join")
        go.wait()
        payload = make_payload(payload_kind)
        began = time.perf_counter()
        for seq in range(frames):
            delay = began + seq / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            row = seq * len(STAMPS)
            stamps[row] = time.perf_counter()
            chunk = cp.DataChunk()
            chunk.add("seq", seq)
            chunk.add("t", time.time())
            if isinstance(payload, dict):
                chunk.add("frame", payload)
            else:
                chunk.add("frame", payload, content_type="image")
            stamps[row + 1] = time.perf_counter()
            publisher.send(chunk)
            stamps[row + 3] = time.perf_counter()
            stamps[row + 2] = handed[0]
        publisher.end()
    finally:
        publisher.close()
        context.term()


def _sink(frames: int, stamps: Any, address_in: Connection, ready: Any) -> None:
    """Receive until the end marker, stamping the poll's wake-up and the decoded chunk."""
    context = zmq.Context()
    subscriber = Subscriber(context, "sink")
    poller = subscriber._poller  # the probe times the wake-up of the poll the Subscriber owns
    poll = poller.poll
    woke = [0.0]

    def timed_poll(timeout: Any = None) -> Any:
        events = poll(timeout)
        woke[0] = time.perf_counter()
        return events

    poller.poll = timed_poll  # type: ignore[method-assign]
    try:
        subscriber.connect("source", address_in.recv())
        ready.set()
        while not subscriber.all_ended:
            for chunk in subscriber.stream(RECEIVE_TIMEOUT_S):
                touch(chunk.get("frame")["value"])
                row = int(chunk.get("seq")["value"]) * len(STAMPS)
                stamps[row + 4] = woke[0]
                stamps[row + 5] = time.perf_counter()
                del chunk
    finally:
        subscriber.close()
        context.term()


def measure(payload_kind: str, *, frames: int, rate: float) -> dict[str, tuple[float, float]]:
    """Run one source and one sink for ``frames`` frames; median and p99 (ms) of each part."""
    ctx = mp.get_context("fork")
    stamps = ctx.RawArray("d", frames * len(STAMPS))
    receive_end, send_end = ctx.Pipe(duplex=False)
    ready, go = ctx.Event(), ctx.Event()
    sink = ctx.Process(target=_sink, args=(frames, stamps, receive_end, ready))
    source = ctx.Process(target=_source, args=(payload_kind, frames, rate, stamps, send_end, go))
    sink.start()
    source.start()
    try:
        if not ready.wait(SUBSCRIBE_TIMEOUT_S):
            raise RuntimeError("the sink did not connect")
        go.set()
        source.join(frames / rate + 30)
        sink.join(30)
    finally:
        for proc in (source, sink):
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    table = np.frombuffer(stamps, dtype=np.float64).reshape(frames, len(STAMPS))
    table = table[table[:, 5] > 0][frames // 10 :]  # delivered frames, after a 10 % warm-up
    parts = {
        "build": table[:, 1] - table[:, 0],
        "encode": table[:, 2] - table[:, 1],
        "send": table[:, 3] - table[:, 2],
        "hop": table[:, 4] - table[:, 2],
        "decode": table[:, 5] - table[:, 4],
        "one way": table[:, 5] - table[:, 0],
    }
    return {
        name: (float(np.median(ms)) * 1000, float(np.percentile(ms, 99)) * 1000)
        for name, ms in parts.items()
    } | {"frames": (float(len(table)), float(frames))}


WAKEUP_MESSAGE = 256


def _wakeup_sender(kind: str, address: str, frames: int, rate: float, stamps: Any,
                   go: Any) -> None:
    """Send ``frames`` small messages at ``rate``, stamping each just before the send call."""
    message = bytearray(WAKEUP_MESSAGE)
    context = zmq.Context() if kind == "zmq" else None
    if context is not None:
        sender: Any = context.socket(zmq.PUB)
        sender.bind(address)
    else:
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    go.wait()
    began = time.perf_counter()
    for seq in range(frames):
        delay = began + seq / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        message[:4] = seq.to_bytes(4, "little")
        stamps[seq * 2] = time.perf_counter()
        if context is not None:
            sender.send(bytes(message))
        else:
            sender.sendto(message, address)
    if context is not None:
        sender.close(linger=1000)
        context.term()
    else:
        sender.close()


def _wakeup_receiver(kind: str, address: str, frames: int, stamps: Any, ready: Any) -> None:
    """Block in a poll until each message arrives; stamp its wake-up."""
    if kind == "zmq":
        context = zmq.Context()
        receiver: Any = context.socket(zmq.SUB)
        receiver.setsockopt(zmq.SUBSCRIBE, b"")
        receiver.connect(address)
        poller: Any = zmq.Poller()
        poller.register(receiver, zmq.POLLIN)
        time.sleep(0.3)  # the subscription reaches the publisher (a measuring script only)
    else:
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(address)
        poller = select.poll()
        poller.register(receiver.fileno(), select.POLLIN)
    ready.set()
    for _ in range(frames):
        if not poller.poll(RECEIVE_TIMEOUT_S * 1000):
            break
        data = receiver.recv() if kind == "zmq" else receiver.recv(WAKEUP_MESSAGE)
        stamps[int.from_bytes(data[:4], "little") * 2 + 1] = time.perf_counter()
    receiver.close()


def measure_wakeup(kind: str, *, frames: int, rate: float) -> tuple[float, float]:
    """Median and p99 (ms) of the bare hop over ``kind`` (``zmq`` or ``unix``)."""
    ctx = mp.get_context("fork")
    stamps = ctx.RawArray("d", frames * 2)
    ready, go = ctx.Event(), ctx.Event()
    with tempfile.TemporaryDirectory() as directory:  # 0700: private to this user
        path = os.path.join(directory, "hop")
        address = f"ipc://{path}" if kind == "zmq" else path
        if kind == "zmq":  # the publisher binds first, the subscriber connects
            sender = ctx.Process(target=_wakeup_sender, args=(kind, address, frames, rate, stamps, go))
            sender.start()
            time.sleep(0.2)
            receiver = ctx.Process(target=_wakeup_receiver, args=(kind, address, frames, stamps, ready))
            receiver.start()
        else:  # the datagram receiver binds first
            receiver = ctx.Process(target=_wakeup_receiver, args=(kind, address, frames, stamps, ready))
            receiver.start()
            ready.wait(SUBSCRIBE_TIMEOUT_S)
            sender = ctx.Process(target=_wakeup_sender, args=(kind, address, frames, rate, stamps, go))
            sender.start()
        try:
            ready.wait(SUBSCRIBE_TIMEOUT_S)
            go.set()
            sender.join(frames / rate + 30)
            receiver.join(30)
        finally:
            for proc in (sender, receiver):
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
    table = np.frombuffer(stamps, dtype=np.float64).reshape(frames, 2)
    hops = (table[:, 1] - table[:, 0])[table[:, 1] > 0][frames // 10 :] * 1000
    return float(np.median(hops)), float(np.percentile(hops, 99))


def main(argv: list[str] | None = None) -> int:
    """Print the breakdown for each payload."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency_breakdown")
    parser.add_argument("--payloads", default="dict1k,vga,hd")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--wakeups", action="store_true", help="also time the bare hop")
    args = parser.parse_args(argv)
    print(f"{'payload':<8} {'part':<8} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in args.payloads.split(","):
        figures = measure(kind, frames=args.frames, rate=args.rate)
        delivered, sent = figures.pop("frames")
        for part, (p50, p99) in figures.items():
            print(f"{kind:<8} {part:<8} {p50:>8.3f} {p99:>8.3f}")
        print(f"{kind:<8} ({delivered:.0f} frames after the warm-up, of {sent:.0f} sent)")
    if args.wakeups:
        for kind in ("zmq", "unix", "zmq", "unix"):  # interleaved: the machine drifts
            p50, p99 = measure_wakeup(kind, frames=args.frames, rate=args.rate)
            print(f"{'hop':<8} {kind:<8} {p50:>8.3f} {p99:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
