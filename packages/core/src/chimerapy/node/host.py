"""The node process: ``python -m chimerapy.node.host --control ADDR --node-id ID``.

A Worker has one such process per node, forked with these arguments by its launcher
(:mod:`chimerapy.worker.launcher`). It connects back to the Worker over a ZeroMQ DEALER
socket and then follows the Worker's requests::

    hello -> load (prep) -> loaded -> connect -> connected -> start|step -> ... stop -> stopped

``start`` with ``{"record": false}`` previews: the loop runs and every ``save_*`` call is only
counted; a later ``record`` (``{"at": manager time}``) makes the running loop write from then on.

The main thread runs the node's own code (prep, the loop, teardown); a control thread owns the
socket, so that stop, step and clock updates reach the node while its loop runs. The process
ends itself when its Worker dies (parent-death signal, and a parent-pid check).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import importlib
import json
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import cloudpickle
import zmq

from ..net import control
from ..net.control import Envelope
from ..net.keys import Keypair
from ..net.transport import Consumer
from . import last_output
from .runtime import InputSpec, NodeRuntime

log = logging.getLogger(__name__)

STATS_INTERVAL = 1.0


class ControlThread(threading.Thread):
    """Owns the DEALER socket: forwards requests to the main thread, sends what it queues."""

    def __init__(self, context: zmq.Context, address: str, node_id: str) -> None:
        super().__init__(name="chimerapy-control", daemon=True)
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.socket.setsockopt(zmq.IDENTITY, node_id.encode())
        self.socket.connect(address)
        self.requests: queue.Queue[Envelope] = queue.Queue()
        self.outbox: queue.Queue[Envelope] = queue.Queue()
        self._wake_read, self._wake_write = os.pipe()  # send() wakes the poll below at once
        os.set_blocking(self._wake_write, False)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        self._poller.register(self._wake_read, zmq.POLLIN)
        self.runtime: NodeRuntime | None = None
        self.offset = 0.0
        self.closing = threading.Event()
        self._parent = os.getppid()

    def send(self, envelope: Envelope) -> None:
        """Queue ``envelope`` for the Worker (thread-safe)."""
        self.outbox.put(envelope)
        self._wake()

    def close(self) -> None:
        """Send what is queued, then end the thread (thread-safe)."""
        self.closing.set()
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except (BlockingIOError, OSError):  # the pipe is full (a wake-up is pending) or closed
            pass

    def run(self) -> None:
        next_stats = time.monotonic() + STATS_INTERVAL
        while not self.closing.is_set():
            events = dict(self._poller.poll(int(STATS_INTERVAL * 1000 / 4)))
            if self._wake_read in events:
                os.read(self._wake_read, 4096)
            while self.socket.poll(0, zmq.POLLIN):
                self._dispatch(self.socket.recv())
            self._flush()
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + STATS_INTERVAL
                if self.runtime is not None and self.runtime.mode != "idle":
                    self.send(Envelope("node_stats", {"stats": self.runtime.stats()}))
                if os.getppid() != self._parent:  # the Worker is gone
                    self._orphaned()
        self._flush()
        self.socket.close()  # the wake-up pipe stays open: other threads may still send

    def _dispatch(self, raw: bytes) -> None:
        try:
            envelope = control.decode(raw)
        except Exception as error:  # noqa: BLE001 - a malformed request: say so, keep going
            self.send(Envelope("node_error", {"node": "?", "phase": "control", "traceback": str(error)}))
            return
        runtime = self.runtime
        if envelope.type == "stop" and runtime is not None and runtime.mode != "idle":
            runtime.request_stop(at=envelope.data.get("at"))
            self.send(envelope.reply())
        elif envelope.type == "call":
            self._call(envelope, runtime)
        elif envelope.type == "step" and runtime is not None and runtime.mode == "step":
            runtime.allow_step()
            self.send(envelope.reply())
        elif envelope.type == "start" and runtime is not None and runtime.mode == "step":
            runtime.mode = "run"  # stepping, then start(): the loop stops waiting for permits
            runtime.allow_step()
            self.send(envelope.reply())
        elif envelope.type == "record" and runtime is not None:
            runtime.begin_recording(envelope.data.get("at"))  # before it started, too: it then records
            self.send(envelope.reply())
            if runtime.mode != "idle":
                self.send(Envelope("node_state", {"node": runtime.node.name, "state": "running"}))
        elif envelope.type == "gather":
            self.send(envelope.reply({"chunk": latest_output(runtime)}))
        elif envelope.type == "clock":
            self.offset = float(envelope.data["offset"])
        else:
            self.requests.put(envelope)

    def _call(self, envelope: Envelope, runtime: NodeRuntime | None) -> None:
        """A registered-method call: queued for the node's thread while it runs, else refused."""
        if runtime is None or runtime.mode == "idle" or runtime.stop_requested_at is not None:
            self.send(envelope.fail(f"node {envelope.data.get('node', '?')} is not running; registered methods "
                                    f"are called while the pipeline runs (start it first)"))
            return

        def answer(ok: bool, value: Any) -> None:
            if ok:
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    value = repr(value)  # what JSON cannot hold goes back as its text
                self.send(envelope.reply({"result": value}))
            else:
                self.send(envelope.fail(str(value)))

        runtime.submit_call(str(envelope.data["method"]), dict(envelope.data.get("params") or {}), answer)

    def _flush(self) -> None:
        while True:
            try:
                envelope = self.outbox.get_nowait()
            except queue.Empty:
                return
            self.socket.send(control.encode(envelope).encode())

    def _orphaned(self) -> None:
        if self.runtime is not None:
            self.runtime.request_stop()
        self.requests.put(Envelope("exit"))

    def clock(self) -> float:
        return time.time() + self.offset


class ForwardingHandler(logging.Handler):
    """Sends this process's log records to the Worker (and so to the Manager)."""

    def __init__(self, channel: ControlThread, node: str) -> None:
        super().__init__(logging.INFO)
        self.channel = channel
        self.node = node

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: dict[str, Any] = {
                "time": self.channel.clock(),
                "level": record.levelname,
                "logger": record.name,
                "node": self.node,
                "message": record.getMessage(),
            }
            if record.exc_info:
                line["message"] += "\n" + "".join(traceback.format_exception(*record.exc_info))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted must not kill the node
            return
        self.channel.send(Envelope("log", {"records": [line]}))


class NodeHost:
    """Runs the Worker's requests on the main thread."""

    def __init__(self, channel: ControlThread, context: zmq.Context) -> None:
        self.channel = channel
        self.context = context
        self.runtime: NodeRuntime | None = None
        self.name = "?"
        self.private_dir: str | None = None  # the Worker's, where the last output is kept

    def serve(self) -> int:
        """Handle requests until the node has stopped or the Worker says exit."""
        handlers = {"load": self._load, "connect": self._connect, "start": self._start, "step": self._start}
        while True:
            try:
                envelope = self.channel.requests.get(timeout=0.5)
            except queue.Empty:
                continue
            if envelope.type in ("exit", "stop"):
                if envelope.id is not None:
                    self.channel.send(envelope.reply())
                if self.runtime is not None:
                    self.runtime.finish()
                    if envelope.type == "stop":  # stopped before it started: an orderly end too
                        self._report_stopped(self.runtime)
                return 0
            handler = handlers.get(envelope.type)
            if handler is None:
                self.channel.send(envelope.fail(f"node {self.name}: unexpected request {envelope.type!r}"))
                continue
            if handler(envelope):
                return 0

    def _load(self, envelope: Envelope) -> bool:
        spec = envelope.data["spec"]
        sys.path[:0] = [p for p in spec.get("pythonpath", []) if p not in sys.path]  # shipped packages
        try:
            node = cloudpickle.loads(base64.b64decode(spec["code"]))
        except Exception:  # noqa: BLE001 - user code: reported with its traceback
            self.channel.send(envelope.fail(f"node {spec.get('name')}: cannot load its code", {"phase": "load", "traceback": traceback.format_exc()}))
            return False
        self.name = str(spec.get("name") or node.name)  # its unique name in the session (see Graph)
        self.private_dir = spec.get("private_dir")
        _name_process(f"cp-{self.name}")
        self.channel.offset = float(spec.get("offset", 0.0))
        logging.getLogger().addHandler(ForwardingHandler(self.channel, self.name))
        errors: list[tuple[str, str]] = []

        def report_error(phase: str, text: str) -> None:
            errors.append((phase, text))
            self._report(phase, text)

        try:
            self.runtime = NodeRuntime(
                node,
                context=self.context,
                host=spec["host"],
                directory=Path(spec["directory"]),
                clock=self.channel.clock,
                inputs=spec["inputs"],
                followed=spec.get("followed"),
                consumers=[Consumer(c["name"], c["mode"], c.get("key")) for c in spec.get("consumers", [])],
                report_error=report_error,
                drain_timeout=float(spec.get("drain_timeout", 5.0)),
                on_preview=lambda records: self.channel.send(
                    Envelope("preview", {"node": self.name, "records": records})),
                private_dir=spec.get("private_dir"),
                keypair=Keypair(**spec["keypair"]) if spec.get("keypair") else None,
                endpoints=spec.get("endpoints"),
            )
        except Exception:  # noqa: BLE001 - user code: reported with its traceback
            self.channel.send(envelope.fail(f"node {node.name}: cannot set up", {"phase": "load", "traceback": traceback.format_exc()}))
            return False
        self.channel.runtime = self.runtime
        # the recorder (PyAV) loads while prep runs, so that a first save_* call does not wait
        threading.Thread(target=importlib.import_module, args=("chimerapy.records.recorder",), daemon=True).start()
        if not self.runtime.prep():
            phase, text = errors[-1]
            self.channel.send(envelope.fail(f"node {node.name} raised in prep", {"phase": phase, "traceback": text}))
            return False
        addresses = self.runtime.publisher.addresses if self.runtime.publisher else {}
        self.channel.send(envelope.reply({"addresses": addresses, "pid": os.getpid()}))
        return False

    def _connect(self, envelope: Envelope) -> bool:
        runtime = self._require(envelope)
        if runtime is None:
            return False
        try:
            runtime.connect([InputSpec(**item) for item in envelope.data["inputs"]])
        except (TypeError, ValueError) as error:
            self.channel.send(envelope.fail(f"node {self.name}: cannot connect its inputs: {error}"))
            return False
        missing: set[str] = set()
        if runtime.publisher is not None:
            missing = runtime.publisher.wait_for_subscribers(float(envelope.data.get("timeout", 10.0)))
        if missing:
            self.channel.send(envelope.fail(f"node {self.name}: consumers {sorted(missing)} did not connect"))
        else:
            self.channel.send(envelope.reply())
        return False

    def _start(self, envelope: Envelope) -> bool:
        runtime = self._require(envelope)
        if runtime is None:
            return False
        mode = "step" if envelope.type == "step" else "run"
        if not envelope.data.get("record", True) and runtime.recording_since is None:
            runtime.recording = False  # a preview (unless a record order came first)
        self.channel.send(envelope.reply())
        if mode == "step":
            runtime.allow_step()
        state = "running" if runtime.recording else "preview"
        self.channel.send(Envelope("node_state", {"node": self.name, "state": state}))
        runtime.run(mode)
        self._report_stopped(runtime)
        return True

    def _report_stopped(self, runtime: NodeRuntime) -> None:
        files = runtime._recorder.files() if runtime._recorder is not None else []
        self.channel.send(Envelope("stopped", {"node": self.name, "stats": runtime.stats(),
                                               "files": [str(f) for f in files],
                                               "last_output": last_output.write(runtime.final_output(),
                                                                                self.private_dir)}))

    def _require(self, envelope: Envelope) -> NodeRuntime | None:
        if self.runtime is None:
            self.channel.send(envelope.fail(f"node {self.name}: {envelope.type} before load"))
        return self.runtime

    def _report(self, phase: str, text: str) -> None:
        self.channel.send(Envelope("node_error", {"node": self.name, "phase": phase, "traceback": text}))


def latest_output(runtime: NodeRuntime | None) -> dict[str, Any] | None:
    """The node's last output as JSON for ``Manager.gather`` (None if none, or not encodable)."""
    if runtime is None:
        return None
    try:
        return runtime.gather_output()  # read by the Worker's authenticated Manager only
    except (TypeError, ValueError, AttributeError, pickle.PicklingError):  # left out, never fatal
        log.warning("gather: the last output of this node cannot be encoded", exc_info=True)
        return None


def _prctl(option: int, argument: int | bytes) -> None:
    """Linux's ``prctl``; nothing elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, argument)
        except OSError:
            pass


def _name_process(name: str) -> None:
    """Show ``name`` for this process in top, htop and ``ps -o comm`` (Linux keeps 15 bytes)."""
    _prctl(15, name.encode()[:15])  # PR_SET_NAME


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent (the Worker) dies."""
    _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chimerapy.node.host")
    parser.add_argument("--control", required=True)
    parser.add_argument("--node-id", required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    logging.getLogger().setLevel(logging.INFO)
    context = zmq.Context()
    channel = ControlThread(context, args.control, args.node_id)
    host = NodeHost(channel, context)

    def on_term(signum: int, frame: Any) -> None:
        if host.runtime is not None and host.runtime.mode != "idle":
            host.runtime.request_stop()
        else:
            channel.requests.put(Envelope("exit"))

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the Manager, which stops us
    channel.start()
    channel.send(Envelope("hello", {"node": args.node_id, "pid": os.getpid()}))
    code = host.serve()
    if host.runtime is not None:
        host.runtime.close(timeout=1.0)
    channel.close()
    channel.join(timeout=5.0)
    context.term()
    return code


def run(argv: list[str] | None = None) -> None:
    """Entry point: run, then leave at once (files are closed and flushed by now; the
    interpreter's module teardown would only add seconds under load)."""
    code = main(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
