"""Node: the unit of computation users subclass (``prep``, ``step``, ``teardown``, ``main``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..data_chunk import DataChunk
from ..errors import StateError
from ..names import check_name
from .params import capture_init

if TYPE_CHECKING:
    from ..records import Recorder

__all__ = ["Node", "Runtime", "use_debug_runtime"]

DebugMode = Literal["step", "stream"]


class Runtime(Protocol):
    """What a Node asks of the runtime that drives it (:mod:`chimerapy.node.runtime` is the one).

    Node never imports its runtime: a Worker's node process, a debug mode and
    :mod:`chimerapy.testing` each hand it one.
    """

    steps: int
    publisher: Any
    clock: Callable[[], float]

    @property
    def recorder(self) -> Recorder: ...
    def should_continue(self) -> bool: ...
    def tick(self, timeout: float = 0.1) -> None: ...
    def poll_inputs(self, timeout: float) -> list[DataChunk]: ...
    def emit(self, output: Any) -> DataChunk | None: ...
    def step_by_hand(self, chunks: dict[str, DataChunk] | None) -> DataChunk | None: ...
    def run_stream(self, *, blocking: bool) -> None: ...
    def close(self, timeout: float = 10.0) -> None: ...


_debug_runtime: Callable[[Node], Runtime] | None = None


def use_debug_runtime(factory: Callable[[Node], Runtime]) -> None:
    """Set how debug modes make a node's runtime here (done by :mod:`chimerapy.node.runtime`)."""
    global _debug_runtime
    _debug_runtime = factory


def _make_debug_runtime(node: Node) -> Runtime:
    if _debug_runtime is None:  # only if chimerapy.node was bypassed
        raise StateError("no node runtime is loaded: import chimerapy.node.runtime first")
    return _debug_runtime(node)


class Node:
    """A basic unit of computation; each node runs in its own process on a Worker.

    Override ``prep`` (open devices and files), ``step`` (one iteration: produce or transform a
    :class:`DataChunk`) and ``teardown`` (release what ``prep`` opened). ``step`` of a source
    node (no inputs) is called as fast as it returns, so pace it (e.g. ``time.sleep``); ``step``
    of a node with inputs is called with ``data_chunks`` (in-bound node name -> latest chunk) when
    its followed input is new and every input has delivered at least once.

    ``step`` may return a DataChunk, ``None`` (nothing to send) or any other value, which is
    sent as the record ``"default"`` of a new chunk (so ``0`` or an empty array is delivered).

    Args:
        name: the node's name, unique within a graph; it follows the name rule of
            :mod:`chimerapy.names` (letters, digits, ``-``, ``_``, ``.``; at most 64 characters),
            else :class:`~chimerapy.errors.InvalidNameError` is raised.
        debug: ``"step"`` to drive the node by hand in this process (:meth:`debug_step`), or
            ``"stream"`` to run its loop in a thread here, publishing on ``debug_port``.
        debug_port: the TCP port for ``debug="stream"`` (0 or None: a free port).
    """

    #: Edges into this node default to latest-only (set True in nodes slower than their sources).
    latest_only_inputs: bool = False
    #: What the Worker does when this node's process dies: ``"never"`` restart it, or restart it
    #: ``"on-failure"`` (at most ``max_restarts`` times; it records into ``<name>.restart<N>/``).
    restart: str = "never"
    max_restarts: int = 3

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        capture_init(cls)  # a node keeps its constructor's arguments, for meta.json

    def __init__(
        self, name: str, debug: DebugMode | None = None, debug_port: int | None = None
    ) -> None:
        check_name("node", name)
        if debug not in (None, "step", "stream"):
            raise ValueError(f"node {name!r}: debug must be None, 'step' or 'stream', got {debug!r}")
        self.name = name
        self.id = uuid.uuid4().hex[:12]
        self.debug = debug
        self.debug_port = debug_port
        #: In-bound node name -> the latest chunk received from it.
        self.in_bound_data: dict[str, DataChunk] = {}
        #: True when a chunk arrived since the last step.
        self.new_data_available = False
        self._runtime: Runtime | None = None

    # -- to override -----------------------------------------------------------------------------

    def prep(self) -> None:
        """Set up: open files, connect to sensors, calibrate. Runs in the node's process."""

    def step(self, *args: Any, **kwargs: Any) -> DataChunk | Any:
        """One iteration; see the class docstring for when it is called and what it returns.

        Subclasses define ``step(self)`` (a source) or ``step(self, data_chunks)``, where
        ``data_chunks`` maps each in-bound node's name to its latest chunk.
        """
        return None

    def teardown(self) -> None:
        """Release what :meth:`prep` opened. Runs once, after the last step."""

    def main(self) -> None:
        """The loop that calls :meth:`step` while the node runs.

        Override with care: keep calling :meth:`poll_inputs` (which fills ``in_bound_data`` and
        ``new_data_available``) and send outputs with :meth:`publish`, while ``self.running``.
        """
        runtime = self._require_runtime("main")
        while self.running:
            runtime.tick()

    # -- services for node code ------------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """This node's logger; its records reach the Manager and the session log."""
        return logging.getLogger(f"chimerapy.node.{self.name}")

    @property
    def running(self) -> bool:
        """True until the node is told to stop and (for nodes with inputs) has drained them."""
        return self._runtime is not None and self._runtime.should_continue()

    def now(self) -> float:
        """The current time on the Manager's clock (UNIX seconds), for timestamps."""
        return self._runtime.clock() if self._runtime else time.time()

    def poll_inputs(self, timeout: float = 0.1) -> list[DataChunk]:
        """Receive what arrived on the inputs (for custom ``main`` loops); see :meth:`main`."""
        return self._require_runtime("poll_inputs").poll_inputs(timeout)

    def publish(self, chunk: DataChunk | Any) -> None:
        """Send ``chunk`` to the consumers now (for custom ``main`` loops: each counts as a step)."""
        runtime = self._require_runtime("publish")
        if type(self).main is not Node.main:
            runtime.steps += 1
        runtime.emit(chunk)

    # -- recording (queued to a writer thread; never waits on disk) ------------------------------

    def save_video(self, name: str, frame: Any, fps: float, *, timestamp: float | None = None) -> None:
        """Append ``frame`` (uint8 BGR or gray) to the H.264 video ``name`` at ``fps``.

        ``timestamp``: the frame's capture time on the Manager clock (default: now).
        """
        when = self.now() if timestamp is None else timestamp
        self._recorder().save_video(name, frame, fps, when)

    def save_audio(
        self, name: str, samples: Any, rate: int, channels: int, *, timestamp: float | None = None
    ) -> None:
        """Append a block of ``samples`` (int16 or float32, ``(n,)`` or ``(n, channels)``) to ``name``.wav.

        ``timestamp``: the Manager-clock time of the block's first sample; by default the block
        is taken to have just ended (now minus its duration).
        """
        when = timestamp if timestamp is not None else self.now() - (len(samples) / float(rate) if rate else 0.0)
        self._recorder().save_audio(name, samples, rate, channels, when)

    def save_tabular(self, name: str, row: Any, *, timestamp: float | None = None) -> None:
        """Append ``row`` (a dict or a pandas DataFrame) to the CSV file ``name``.

        ``timestamp``: the Manager-clock time the row describes (default: now), e.g. the
        ``timestamp`` of the input chunk it was computed from.
        """
        self._recorder().save_tabular(name, row, self._when(timestamp))

    def save_image(self, name: str, image: Any, *, timestamp: float | None = None) -> None:
        """Write ``image`` as the next numbered PNG of ``name`` (``timestamp``: default now)."""
        self._recorder().save_image(name, image, self._when(timestamp))

    def save_json(self, name: str, obj: Any, *, timestamp: float | None = None) -> None:
        """Append ``obj`` as one line of the JSON Lines file ``name`` (``timestamp``: default now)."""
        self._recorder().save_json(name, obj, self._when(timestamp))

    def save_text(self, name: str, text: str, *, timestamp: float | None = None) -> None:
        """Append ``text`` to the text file ``name`` (``timestamp``: default now)."""
        self._recorder().save_text(name, text, self._when(timestamp))

    def save_array(self, name: str, array: Any, *, timestamp: float | None = None) -> None:
        """Append the numpy ``array`` to the ``.npy`` stack ``name`` (``timestamp``: default now)."""
        self._recorder().save_array(name, array, self._when(timestamp))

    def _when(self, timestamp: float | None) -> float:
        return self.now() if timestamp is None else timestamp

    # -- debug modes -----------------------------------------------------------------------------

    def debug_step(self, data_chunks: dict[str, DataChunk] | None = None) -> DataChunk | None:
        """Run one step here (``debug="step"``); ``prep`` runs before the first one.

        Returns the chunk the step produced (or ``None``).
        """
        if self.debug != "step":
            raise StateError(f"node {self.name!r}: debug_step needs Node(..., debug='step')")
        runtime = self._runtime or _make_debug_runtime(self)
        return runtime.step_by_hand(data_chunks)

    def run(self, blocking: bool = True) -> None:
        """Run prep, the loop and teardown here (``debug="stream"``), publishing on debug_port.

        With ``blocking=False`` the loop runs in a background thread until :meth:`shutdown`.
        """
        if self.debug != "stream":
            raise StateError(
                f"node {self.name!r} runs inside a Worker; to run it in this process create it "
                f"with debug='stream' (or debug='step' and call debug_step)"
            )
        (self._runtime or _make_debug_runtime(self)).run_stream(blocking=blocking)

    @property
    def debug_address(self) -> str | None:
        """The address a ``debug="stream"`` node publishes on, once running."""
        runtime = self._runtime
        return runtime.publisher.addresses.get("debug") if runtime and runtime.publisher else None

    def shutdown(self) -> None:
        """End a debug run: stop the loop, run teardown and close recordings."""
        if self._runtime is not None:
            self._runtime.close()

    # -- internals -------------------------------------------------------------------------------

    def _recorder(self) -> Recorder:
        return self._require_runtime("save_*").recorder

    def _require_runtime(self, what: str) -> Runtime:
        if self._runtime is None:
            raise StateError(
                f"node {self.name!r}: {what} is only available while the node runs "
                f"(inside a Worker, a debug mode, or chimerapy.testing)"
            )
        return self._runtime

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runtime"] = None
        state["in_bound_data"] = {}
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
