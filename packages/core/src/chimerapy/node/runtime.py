"""NodeRuntime: drives one Node's loop: inputs, the follow rule, outputs, recording and stats.

The same runtime serves a node in its Worker-spawned process (:mod:`chimerapy.node.host`), the
debug modes of :class:`chimerapy.Node`, and the in-process harness :mod:`chimerapy.testing`.
"""

from __future__ import annotations

import inspect
import logging
import pickle
import queue
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq

from ..data_chunk import DataChunk
from ..errors import UnsendableRecordError
from ..net.endpoints import is_ipc
from ..net.keys import Keypair
from ..net.transport import Consumer, Publisher, Subscriber
from .node import Node, use_debug_runtime
from .preview import PreviewMaker
from .registered import BadCall
from .registered import call as call_registered
from .save_counter import SaveCounter

if TYPE_CHECKING:
    from ..records import Recorder

__all__ = ["InputSpec", "NodeRuntime", "as_chunk", "local_runtime"]

log = logging.getLogger(__name__)

ErrorReporter = Callable[[str, str], None]  # (phase, formatted traceback)


@dataclass(frozen=True)
class InputSpec:
    """Where one input of a node comes from."""

    producer: str
    address: str
    latest_only: bool = False
    #: The producer's CURVE public key; every edge that is not ``ipc://`` must have one.
    server_key: str | None = None


def as_chunk(output: Any) -> DataChunk | None:
    """Turn what ``step`` returned into a chunk: ``None`` stays ``None``."""
    if output is None or isinstance(output, DataChunk):
        return output
    chunk = DataChunk()
    chunk.add("default", output)
    return chunk


class NodeRuntime:
    """Runs ``node`` against its transport.

    Args:
        node: the user's node (the runtime attaches itself as ``node._runtime``).
        context: the ZeroMQ context for the node's sockets.
        host: the interface its publisher binds on.
        directory: where the node's recordings go.
        clock: Manager-aligned time.
        inputs: the names of the in-bound nodes.
        followed: the in-bound node whose new chunks trigger ``step``.
        consumers: who consumes its outputs, and how (one edge each).
        report_error: called with ``(phase, traceback)`` when node code raises.
        drain_timeout: after stop, how long a node waits for its inputs to end.
        on_preview: called with a small preview of an output at most twice a second.
        private_dir: the Worker's private folder for same-host endpoints.
        keypair: the node's CURVE keypair for edges to and from other hosts.
        endpoints: fixed endpoints by consumer (a restarted node takes its predecessor's).
    """

    def __init__(
        self,
        node: Node,
        *,
        context: zmq.Context,
        host: str,
        directory: Path,
        clock: Callable[[], float] = time.time,
        inputs: Sequence[str] = (),
        followed: str | None = None,
        consumers: list[Consumer] | None = None,
        report_error: ErrorReporter | None = None,
        drain_timeout: float = 5.0,
        on_preview: Callable[[dict[str, Any]], None] | None = None,
        private_dir: str | None = None,
        keypair: Keypair | None = None,
        endpoints: dict[str, str] | None = None,
    ) -> None:
        self.node = node
        self.clock = clock
        self.directory = Path(directory)
        self.inputs = list(inputs)
        self.followed = followed if followed is not None else (self.inputs[0] if self.inputs else None)
        self.drain_timeout = drain_timeout
        self._report_error = report_error or _log_error(node.name)
        self.publisher = (
            Publisher(context, node.name, consumers=consumers, host=host, private_dir=private_dir,
                      keypair=keypair, clock=clock, endpoints=endpoints)
            if consumers
            else None
        )
        self.subscriber = Subscriber(context, node.name, clock=clock, keypair=keypair) if self.inputs else None
        self._recorder: Recorder | None = None
        #: Whether ``save_*`` calls are written (else only counted: a preview, see
        #: :mod:`chimerapy.node.save_counter`); set before :meth:`run`, or by
        #: :meth:`begin_recording` while the loop runs.
        self.recording = True
        #: The Manager's time of the order to record after a preview (None without one).
        self.recording_since: float | None = None
        self._save_counter = SaveCounter()
        self._stop = threading.Event()
        self._stop_time = 0.0
        #: Manager-aligned time at which the node was told to stop (None while running).
        self.stop_requested_at: float | None = None
        self._permits = threading.Semaphore(0)
        self.mode = "idle"  # "run" or "step" once started
        self._prepped = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._source_takes_chunks = _step_takes_chunks(node)
        self.steps = self.step_errors = self.outputs = 0
        #: The last chunk the node produced (what Manager.gather reports).
        self.latest: DataChunk | None = None
        #: The Manager's time of the stop (None while running); outputs computed from data
        #: produced after it are not what gather reports.
        self.stop_at: float | None = None
        self._frozen: bytes | None = None  # gather's answer once the stop is passed, pickled
        self._froze = False  # the stop is passed: _frozen holds the answer (None: not picklable)
        self._last_error_report = 0.0
        self._suppressed_errors = 0
        #: Outputs dropped because a record could not be sent; record name -> the last reason.
        self.dropped_outputs = 0
        self.dropped_records: dict[str, str] = {}
        self._last_drop_report = 0.0
        self._suppressed_drops = 0
        self._rate_mark = (time.monotonic(), 0)
        self._on_preview = on_preview
        self._previews = PreviewMaker() if on_preview is not None else None
        #: Registered-method calls waiting for the node's thread: (name, params, answer).
        self._calls: queue.SimpleQueue[tuple[str, dict[str, Any], Callable[[bool, Any], None]]] = queue.SimpleQueue()
        node._runtime = self

    # -- wiring ----------------------------------------------------------------------------------

    def connect(self, specs: list[InputSpec]) -> None:
        """Connect the subscriber to each input's publisher.

        Raises:
            ValueError: an input that is neither ``ipc://`` nor pinned to its producer's key
                (nothing is ever received from an unauthenticated peer).
        """
        if not specs:
            return
        if self.subscriber is None:
            raise ValueError(f"{self.node.name}: a node without inputs was given input addresses")
        for spec in specs:
            if spec.server_key is None and not is_ipc(spec.address):
                raise ValueError(f"{self.node.name}: input {spec.producer!r} at {spec.address} has no "
                                 f"producer key; edges between hosts must be authenticated")
            self.subscriber.connect(spec.producer, spec.address, latest_only=spec.latest_only,
                                    server_key=spec.server_key)

    @property
    def recorder(self) -> Recorder | SaveCounter:
        """Where the node's ``save_*`` calls go: its Recorder (created on first use), or while it
        previews (:attr:`recording` is False) a :class:`SaveCounter` that writes nothing."""
        if not self.recording:
            return self._save_counter
        if self._recorder is None:
            from ..records import Recorder

            self._recorder = Recorder(self.directory, clock=self.clock, on_error=self._record_error)
        return self._recorder

    # -- lifecycle -------------------------------------------------------------------------------

    def prep(self) -> bool:
        """Run the node's ``prep``; report and return False if it raises."""
        self._prepped = True
        return self._guard("prep", self.node.prep)

    def run(self, mode: str = "run") -> None:
        """Run ``main`` until stopped, then end the output stream, ``teardown``, close recordings."""
        self.mode = mode
        self._rate_mark = (time.monotonic(), self.steps)
        try:
            self._guard("main", self.node.main)
        finally:
            self.finish()

    def finish(self) -> None:
        """End the output stream, run ``teardown`` and close the recordings (once)."""
        if self._closed:
            return
        self._closed = True
        self._run_calls()  # calls still queued are answered (the node stopped), not run
        if self.publisher is not None:
            self.publisher.give_back()
            self.publisher.end(abort=self._give_up_sending)
        if self._prepped:
            self._guard("teardown", self.node.teardown)
        if self._recorder is not None:
            self._recorder.close()

    def request_stop(self, at: float | None = None) -> None:
        """Ask the loop to end: sources stop now, other nodes once their inputs have ended.

        ``at``: the Manager's time of the stop (default: now).
        """
        if not self._stop.is_set():
            self._stop_time = time.monotonic()
            self.stop_requested_at = self.clock()
            self.stop_at = self.stop_requested_at if at is None else float(at)
            self._stop.set()
        self._permits.release()

    def begin_recording(self, at: float | None = None) -> None:
        """From now on write the ``save_*`` calls (thread-safe; the loop goes on undisturbed).

        ``at``: the Manager's time at which recording began (default: now). Each call is
        either counted (before) or written (after): none is both, none is lost.
        """
        if self.recording_since is None:
            self.recording_since = self.clock() if at is None else float(at)
        self.recording = True

    def allow_step(self) -> None:
        """In step mode, let a source node run one more step."""
        self._permits.release()

    def submit_call(self, name: str, params: dict[str, Any], answer: Callable[[bool, Any], None]) -> None:
        """Have the node's thread call its registered method ``name`` between two steps (thread-safe);
        ``answer(True, result)`` or ``answer(False, message)`` follows."""
        self._calls.put((name, params, answer))

    def _run_calls(self) -> None:
        while True:
            try:
                name, params, answer = self._calls.get_nowait()
            except queue.Empty:
                return
            if self._closed:
                answer(False, f"node {self.node.name} stopped before it could run {name}")
                continue
            try:
                result = call_registered(self.node, name, params)
            except BadCall as error:
                answer(False, str(error))
            except Exception as error:  # noqa: BLE001 - any failure of user code goes back to the caller
                answer(False, f"{self.node.name}.{name} raised {type(error).__name__}: {error}\n{traceback.format_exc()}")
            else:
                answer(True, result)

    def should_continue(self) -> bool:
        """The loop condition behind ``Node.running`` (registered-method calls run here, between steps)."""
        self._run_calls()
        if not self._stop.is_set():
            return True
        if self.subscriber is None or self.subscriber.all_ended:
            return False
        return time.monotonic() < self._stop_time + self.drain_timeout

    # -- the loop --------------------------------------------------------------------------------

    def tick(self, timeout: float = 0.1) -> None:
        """One pass of the default ``main``: step a source, or step on new followed inputs."""
        if self.subscriber is None:
            if self.mode == "step" and not self._permits.acquire(timeout=timeout):
                return
            if not self._stop.is_set():
                self.emit(self._call_step(None))
                self._give_back_buffers()
            return
        complete = len(self.inputs)
        for chunk in self.subscriber.stream(timeout):
            self.node.in_bound_data[str(chunk.producer)] = chunk  # always set on a received chunk
            self.node.new_data_available = True
            if chunk.producer == self.followed and len(self.node.in_bound_data) == complete:
                basis = max(c.time for c in self.node.in_bound_data.values())
                self._freeze_if_past_stop(basis)  # before the step: it may change what it sent
                self.emit(self._call_step(dict(self.node.in_bound_data)), basis=basis)
                self._give_back_buffers()

    def poll_inputs(self, timeout: float) -> list[DataChunk]:
        """Receive what arrived and update ``in_bound_data`` (for custom ``main`` loops)."""
        chunks = self.subscriber.receive(timeout) if self.subscriber else []
        for chunk in chunks:
            self.node.in_bound_data[str(chunk.producer)] = chunk
            self.node.new_data_available = True
        return chunks

    def output_buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A writable array to fill in place and send as the record ``name`` (see
        :meth:`chimerapy.Node.output_buffer`)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"node {self.node.name!r}: output_buffer needs a record name (a non-empty string), "
                             f"got {name!r}")
        if self.publisher is None or self._closed:
            return np.empty(shape, dtype)
        return self.publisher.output_buffer(name, shape, dtype, abort=self._give_up_sending)

    def _give_back_buffers(self) -> None:
        """After a step: output buffers the step took and did not send go back to the pool."""
        if self.publisher is not None:
            self.publisher.give_back()

    def emit(self, output: Any, *, basis: float | None = None) -> DataChunk | None:
        """Publish what a step produced (``None`` publishes nothing).

        ``basis``: when the data it was computed from was produced (default: now).

        An output holding a record that cannot be sent (a lock, a generator ...) is dropped,
        counted in :meth:`stats` (``dropped_outputs``, ``dropped_records``) and reported as a
        ``"send"`` error naming the node, the record and the reason; the node goes on.
        """
        chunk = as_chunk(output)
        if chunk is None:
            return None
        self._freeze_if_past_stop(self.clock() if basis is None else basis)
        if self.publisher is not None:
            try:
                self.publisher.send(chunk, abort=self._give_up_sending)
            except UnsendableRecordError as error:
                self._drop_output(error)
                return None
        else:  # a sink: stamped here as the publisher would, for gather
            chunk.producer, chunk.seq, chunk.produced_at = self.node.name, self.outputs, self.clock()
        self.outputs += 1
        self.latest = chunk
        if self._previews is not None and self._on_preview is not None and self._previews.due():  # after sending
            try:
                self._on_preview(self._previews.make(chunk))
            except Exception:  # a preview must never break the node
                log.debug("preview of %s failed", self.node.name, exc_info=True)
        return chunk

    def gather_output(self) -> dict[str, Any] | None:
        """The node's latest output as JSON for ``Manager.gather``: as of the stop once stopped.

        Values that JSON cannot carry are pickled (read only by the authenticated Manager).
        """
        chunk = self.latest
        if self._froze:
            chunk = pickle.loads(self._frozen) if self._frozen is not None else None  # our own bytes
        return chunk.to_json(allow_pickle=True) if chunk is not None else None

    def final_output(self) -> bytes | None:
        """The output gather reports once the node has stopped, pickled (None: there is none,
        or it cannot be pickled, which is logged)."""
        if self._froze or self.latest is None:
            return self._frozen
        return self._snapshot(self.latest)

    def _freeze_if_past_stop(self, basis: float) -> None:
        """Keep gather's answer as it was at the stop, before the first output computed from
        data produced after it (sources finishing a step, consumers draining)."""
        if not self._froze and self.stop_at is not None and basis > self.stop_at and self.latest is not None:
            self._froze = True  # once: a value that cannot be pickled is warned about once, not per step
            self._frozen = self._snapshot(self.latest)

    def _snapshot(self, chunk: DataChunk) -> bytes | None:
        """``chunk`` pickled: a copy of all it holds now (nodes often change what they output later)."""
        try:
            return pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            log.warning("gather: the last output of %s cannot be kept", self.node.name, exc_info=True)
            return None

    def _call_step(self, chunks: dict[str, DataChunk] | None) -> Any:
        self.node.new_data_available = False
        try:
            if chunks is not None:
                result = self.node.step(chunks)
            elif self._source_takes_chunks:
                result = self.node.step({})
            else:
                result = self.node.step()
        except Exception:  # noqa: BLE001 - user code: counted and reported, the node goes on
            self.step_errors += 1
            self._report_step_error(traceback.format_exc())
            return None
        self.steps += 1
        return result

    def _drop_output(self, error: UnsendableRecordError) -> None:
        """Count and report one output that cannot be sent; the node goes on."""
        self.dropped_outputs += 1
        self.dropped_records[error.record] = error.reason
        text = (f"node {self.node.name!r}: an output was dropped: record {error.record!r} cannot be sent: "
                f"{error.reason} ({self.dropped_outputs} output(s) dropped so far; the node goes on)")
        now = time.monotonic()
        if now - self._last_drop_report < 1.0:
            self._suppressed_drops += 1
            return
        if self._suppressed_drops:
            text += f"\n({self._suppressed_drops} more dropped since the last report)"
        self._suppressed_drops = 0
        self._last_drop_report = now
        self._report_error("send", text)

    def _report_step_error(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_error_report < 1.0:
            self._suppressed_errors += 1
            return
        if self._suppressed_errors:
            text += f"\n({self._suppressed_errors} more step errors since the last report)"
        self._suppressed_errors = 0
        self._last_error_report = now
        self._report_error("step", text)

    def _guard(self, phase: str, function: Callable[[], Any]) -> bool:
        try:
            function()
            return True
        except Exception:  # noqa: BLE001 - user code: reported with its traceback
            self._report_error(phase, traceback.format_exc())
            return False

    def _give_up_sending(self) -> bool:
        return self._stop.is_set() and time.monotonic() > self._stop_time + self.drain_timeout

    def _record_error(self, error: Exception) -> None:
        self._report_error("record", f"{type(error).__name__}: {error}")

    # -- stats -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for the Manager: steps, rate, errors, per-input delivery, recording backlog."""
        now = time.monotonic()
        mark_time, mark_steps = self._rate_mark
        rate = (self.steps - mark_steps) / (now - mark_time) if now > mark_time else 0.0
        self._rate_mark = (now, self.steps)
        return {
            "steps": self.steps,
            "step_errors": self.step_errors,
            "outputs": self.outputs,
            "dropped_outputs": self.dropped_outputs,
            "dropped_records": dict(self.dropped_records),
            "rate": round(rate, 2),
            "inputs": {p: e.as_dict() for p, e in (self.subscriber.edges.items() if self.subscriber else [])},
            "garbage": self.subscriber.garbage if self.subscriber else 0,
            "blocked_s": round(self.publisher.blocked_seconds, 3) if self.publisher else 0.0,
            "edges": self.publisher.stats() if self.publisher else {},
            "records": self._recorder.stats() if self._recorder is not None else {},
            "recording": self.recording,
            "preview_saves": self._save_counter.stats(),
            "stop_requested_at": self.stop_requested_at,
        }

    # -- debug modes -----------------------------------------------------------------------------

    def step_by_hand(self, chunks: dict[str, DataChunk] | None) -> DataChunk | None:
        """``debug="step"``: prep on first use, then one step; returns the produced chunk."""
        if not self._prepped and not self.prep():
            raise RuntimeError(f"node {self.node.name!r}: prep failed (see the log)")
        chunk = as_chunk(self._call_step(chunks))
        if chunk is not None:
            self.outputs += 1
            self.latest = chunk
            chunk.producer, chunk.seq, chunk.produced_at = self.node.name, self.outputs - 1, self.clock()
        return chunk

    def run_stream(self, *, blocking: bool) -> None:
        """``debug="stream"``: prep, then the loop (here or in a thread) until ``close``."""
        if not self.prep():
            raise RuntimeError(f"node {self.node.name!r}: prep failed (see the log)")
        if blocking:
            self.run()
            return
        self._thread = threading.Thread(target=self.run, name=f"node-{self.node.name}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop if it runs, then teardown and close (debug modes and testing)."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.finish()
        for part in (self.publisher, self.subscriber):
            if part is not None:
                part.close()


def local_runtime(node: Node, directory: Path | None = None) -> NodeRuntime:
    """A runtime for running ``node`` in this process (debug modes, chimerapy.testing)."""
    stream = node.debug == "stream"
    return NodeRuntime(
        node,
        context=zmq.Context.instance(),
        host="127.0.0.1",
        directory=directory or node.logdir or Path(tempfile.mkdtemp(prefix=f"chimerapy-{node.name}-")),
        consumers=[Consumer("debug", "debug")] if stream else [],
        endpoints={"debug": f"tcp://127.0.0.1:{int(node.debug_port or 0)}"} if stream else None,
    )


use_debug_runtime(local_runtime)


def _step_takes_chunks(node: Node) -> bool:
    """True if the node's ``step`` has a required parameter (so it must be given the chunks)."""
    try:
        parameters = inspect.signature(node.step).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def _log_error(name: str) -> ErrorReporter:
    def report(phase: str, text: str) -> None:
        log.error("node %s raised in %s:\n%s", name, phase, text)

    return report
