"""Node: the unit of computation users subclass (``prep``, ``step``, ``teardown``, ``main``)."""

from __future__ import annotations

import inspect
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .. import compat
from ..data_chunk import DataChunk
from ..errors import NodeError, StateError
from ..names import check_name
from .params import capture_init

if TYPE_CHECKING:
    from ..records import Recorder
    from .save_counter import SaveCounter

__all__ = ["DebugProcess", "Node", "Runtime", "use_debug_process", "use_debug_runtime"]

DebugMode = Literal["step", "stream"]


class Runtime(Protocol):
    """What a Node asks of the runtime that drives it (:mod:`chimerapy.node.runtime` is the one).

    Node never imports its runtime: a Worker's node process, a debug mode and
    :mod:`chimerapy.testing` each hand it one.
    """

    steps: int
    publisher: Any
    clock: Callable[[], float]
    directory: Path

    @property
    def recorder(self) -> Recorder | SaveCounter: ...
    def should_continue(self) -> bool: ...
    def tick(self, timeout: float = 0.1) -> None: ...
    def poll_inputs(self, timeout: float) -> list[DataChunk]: ...
    def output_buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any: ...
    def emit(self, output: Any) -> DataChunk | None: ...
    def step_by_hand(self, chunks: dict[str, DataChunk] | None) -> DataChunk | None: ...
    def run_stream(self, *, blocking: bool) -> None: ...
    def prep(self) -> bool: ...
    def close(self, timeout: float = 10.0) -> None: ...


class DebugProcess(Protocol):
    """A ``debug="stream"`` node running in a process of its own (see :meth:`Node.start`)."""

    @property
    def exitcode(self) -> int | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def terminate(self) -> None: ...
    def is_alive(self) -> bool: ...


_debug_runtime: Callable[[Node], Runtime] | None = None
_debug_process: Callable[[Node], DebugProcess] | None = None


def use_debug_runtime(factory: Callable[[Node], Runtime]) -> None:
    """Set how debug modes make a node's runtime here (done by :mod:`chimerapy.node.runtime`)."""
    global _debug_runtime
    _debug_runtime = factory


def use_debug_process(factory: Callable[[Node], DebugProcess]) -> None:
    """Set how :meth:`Node.start` runs a debug node in its own process."""
    global _debug_process
    _debug_process = factory


def _make_debug_runtime(node: Node) -> Runtime:
    if _debug_runtime is None:  # only if chimerapy.node was bypassed
        raise StateError("no node runtime is loaded: import chimerapy.node.runtime first")
    return _debug_runtime(node)


class _NodeType(type):
    """Runs :meth:`Node._constructed` once the outermost ``__init__`` of a node has returned,
    so that ``debug="step"`` runs ``prep`` after a subclass has set its own attributes."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        node = super().__call__(*args, **kwargs)
        node._constructed()
        return node

    @property
    def __signature__(cls) -> inspect.Signature:
        """A node class's signature is its constructor's (not this ``__call__``'s ``*args``)."""
        init = inspect.signature(cls.__init__)  # type: ignore[misc]
        return init.replace(parameters=list(init.parameters.values())[1:])


class Node(metaclass=_NodeType):
    """A basic unit of computation; each node runs in its own process on a Worker.

    Override ``prep`` (open devices and files), ``step`` (one iteration: produce or transform a
    :class:`DataChunk`) and ``teardown`` (release what ``prep`` opened). ``step`` of a source
    node (no inputs) is called as fast as it returns, so pace it (e.g. ``time.sleep``); ``step``
    of a node with inputs is called with ``data_chunks`` (in-bound node name -> latest chunk) when
    its followed input is new and every input has delivered at least once.

    ``step`` may return a DataChunk, ``None`` (nothing to send) or any other value, which is
    sent as the record ``"default"`` of a new chunk (so ``0`` or an empty array is delivered).

    A node that makes large frames can write each one straight into the memory its consumers
    read, saving the copy into shared memory: take a buffer with :meth:`output_buffer`, fill it
    in place, and add it whole to the chunk ``step`` returns (``chunk.add(name, buffer)``).

    Args:
        name: the node's name, unique within a graph; it follows the name rule of
            :mod:`chimerapy.names` (letters, digits, ``-``, ``_``, ``.``; at most 64 characters),
            else :class:`~chimerapy.errors.InvalidNameError` is raised.
        debug: ``"step"``: ``prep`` runs when the node is constructed, in this process, and
            the caller then calls ``step()`` (or :meth:`debug_step`) itself; ``"stream"``:
            :meth:`start` runs the node in a process of its own (or :meth:`run` in this
            one), publishing its outputs on ``debug_port``. Either way recordings go to
            :attr:`logdir` and :meth:`shutdown` closes them.
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
        if debug is True:  # 0.0.10's older documentation: Node(name, True)
            debug = "step"
        if debug is False:
            debug = None
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
        self._logdir: Path | None = None
        self._process: DebugProcess | None = None
        self._converted: set[str] = set()

    def _constructed(self) -> None:
        """After construction: a ``debug="step"`` node gets its runtime and runs ``prep`` here."""
        if self.debug is None:
            return
        if self._logdir is None:
            self._logdir = Path(tempfile.mkdtemp(prefix=f"chimerapy-{self.name}-"))
        if self.debug == "step" and self._runtime is None:
            runtime = _make_debug_runtime(self)
            if not runtime.prep():
                raise NodeError(f"node {self.name!r} raised in prep (the traceback is in the log)",
                                node=self.name, phase="prep")

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

    def output_buffer(self, name: str, shape: tuple[int, ...] | int, dtype: Any = "uint8") -> Any:
        """A writable numpy array of ``shape`` and ``dtype`` to fill in place and send, in this
        step, as the record ``name`` (``chunk.add(name, buffer)``) without a copy.

        When this node's outputs reach consumers on this host through shared memory, the array
        is a view of a free shared-memory slot: this call waits for one as sending does (the
        consumers' backpressure), and sending the array hands the slot to them instead of
        copying the frame into it. The slot is reused only once every consumer has let go of
        the frame (a consumer that keeps it past its step never sees it change). Everywhere
        else (no consumer, consumers on other hosts only, arrays under 64 KiB, ``/dev/shm``
        full, the debug modes, :mod:`chimerapy.testing`) it is an ordinary new array, sent as
        any other.

        Ownership: the array is valid until the end of the step. A buffer not sent by then is
        given back (its content is lost); one sent must not be written again. Send it whole as
        a record's value: a part of it (a slice) is sent as a copy, and it must not be put
        inside a dict or list (send it as a record of its own). Its content is whatever the slot held before: write every element.
        Asking again for the same ``name`` in one step gives the earlier buffer back.
        """
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        return self._require_runtime("output_buffer").output_buffer(name, dims, dtype)

    def publish(self, chunk: DataChunk | Any) -> None:
        """Send ``chunk`` to the consumers now (for custom ``main`` loops: each counts as a step)."""
        runtime = self._require_runtime("publish")
        if type(self).main is not Node.main:
            runtime.steps += 1
        runtime.emit(chunk)

    # -- recording (queued to a writer thread; never waits on disk) ------------------------------

    def save_video(
        self,
        name: str,
        data: Any = None,
        fps: float | None = None,
        *,
        frame: Any = None,
        timestamp: float | None = None,
        timing: str = "cfr",
    ) -> None:
        """Append a frame (BGR ``(H, W, 3)`` or gray ``(H, W)``) to the H.264 video ``name`` at ``fps``.

        ``data`` (0.0.10's name) or ``frame``: frames of another dtype than ``uint8`` are
        clipped to ``[0, 255]`` and converted, with one warning per record.
        ``timestamp``: the frame's capture time on the Manager clock (default: now).
        ``timing``: ``"cfr"`` (default, as 0.0.10): the video holds ``fps`` frames per second of
        the time the frames were saved over (a late frame's gap is filled with the previous
        frame, frames faster than ``fps`` are dropped, both counted), so index / fps is the
        time; ``"vfr"``: every frame at its own time; ``"frames"``: every frame, frame ``i`` at
        ``i / fps`` (a recorder of a source's frames). The exact times are in
        ``name.timestamps.csv`` either way (see :mod:`chimerapy.records.video`).
        """
        image = self._uint8_frame(name, "save_video", data, frame)
        if fps is None:
            raise TypeError(f"save_video({name!r}) needs fps")
        when = self.now() if timestamp is None else timestamp
        self._recorder().save_video(name, image, fps, when, timing=timing)

    def save_audio(self, name: str, *args: Any, timestamp: float | None = None, **kwargs: Any) -> None:
        """Append a block of samples to ``name``.wav.

        Two call forms: today's ``save_audio(name, samples, rate, channels)`` (``int16`` or
        ``float32``, ``(n,)`` or ``(n, channels)``) and 0.0.10's ``save_audio(name, data,
        channels, format, rate)`` with a PyAudio sample format (``pyaudio.paInt16`` ...) and
        data as PyAudio's bytes or an array of any numeric dtype (interleaved 1-D for several
        channels); see :mod:`chimerapy.compat`.

        ``timestamp``: the Manager-clock time of the block's first sample; by default the block
        is taken to have just ended (now minus its duration).
        """
        data, rate, channels, fmt = compat.resolve_audio_args(name, args, kwargs)
        if fmt is not None or not _native_audio(data):
            data = compat.audio_block(name, data, int(channels), fmt)
        frames = len(data) // (int(channels) if getattr(data, "ndim", 1) == 1 else 1)
        when = timestamp if timestamp is not None else self.now() - (frames / float(rate) if rate else 0.0)
        self._recorder().save_audio(name, data, rate, channels, when)

    def save_tabular(self, name: str, data: Any = None, *, row: Any = None, timestamp: float | None = None) -> None:
        """Append ``data`` (0.0.10's name; or ``row``): a dict, a pandas Series, or every row of a
        pandas DataFrame, to the CSV file ``name``.

        ``timestamp``: the Manager-clock time the row describes (default: now), e.g. the
        ``timestamp`` of the input chunk it was computed from.
        """
        value = _one_of(name, "save_tabular", data=data, row=row)
        when = self._when(timestamp)  # the time of the call, before the recorder may load
        self._recorder().save_tabular(name, value, when)

    def save_image(self, name: str, data: Any = None, *, image: Any = None, timestamp: float | None = None) -> None:
        """Write ``data`` (0.0.10's name; or ``image``) as the next numbered PNG of ``name``.

        Images of another dtype than ``uint8``/``uint16`` are converted to ``uint8`` as 0.0.10
        did, with one warning per record.
        """
        value = _one_of(name, "save_image", data=data, image=image)
        if getattr(value, "dtype", None) is not None and value.dtype.name not in ("uint8", "uint16"):
            value = self._uint8_frame(name, "save_image", value, None)
        when = self._when(timestamp)
        self._recorder().save_image(name, value, when)

    def save_json(self, name: str, data: Any = None, *, obj: Any = None, timestamp: float | None = None) -> None:
        """Append ``data`` (or ``obj``) as one line of the JSON Lines file ``name`` (``timestamp``:
        the time it describes, default now)."""
        value = _one_of(name, "save_json", data=data, obj=obj)
        when = self._when(timestamp)
        self._recorder().save_json(name, value, when)

    def save_text(self, name: str, data: Any = None, *, text: Any = None, suffix: str = "txt",
                  timestamp: float | None = None) -> None:
        """Append ``data`` (or ``text``) to the text file ``name``.txt.

        ``suffix`` is accepted for 0.0.10 programs; the file is always ``name.txt``.
        """
        value = _one_of(name, "save_text", data=data, text=text)
        when = self._when(timestamp)
        self._recorder().save_text(name, value, when)

    def save_array(self, name: str, array: Any, *, timestamp: float | None = None) -> None:
        """Append the numpy ``array`` to the ``.npy`` stack ``name`` (``timestamp``: default now)."""
        when = self._when(timestamp)
        self._recorder().save_array(name, array, when)

    def _when(self, timestamp: float | None) -> float:
        return self.now() if timestamp is None else timestamp

    def _uint8_frame(self, name: str, method: str, data: Any, frame: Any) -> Any:
        value = _one_of(name, method, data=data, frame=frame)
        dtype = getattr(value, "dtype", None)
        if dtype is None or dtype.name == "uint8":
            return value
        if name not in self._converted:
            self._converted.add(name)
            self.logger.warning(
                "%s(%r): frames are %s, converted to uint8 (clipped to 0..255) as ChimeraPy "
                "0.0.10 did; save uint8 frames to avoid the conversion", method, name, dtype,
            )
        return compat.frame_as_uint8(value)

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

    def start(self) -> None:
        """Run the node in a process of its own (``debug="stream"``, as in ChimeraPy 0.0.10).

        ``prep``, the loop and ``teardown`` run there; recordings go to :attr:`logdir`. End it
        with :meth:`shutdown` then :meth:`join`.
        """
        if self.debug is None:
            raise StateError(
                f"node {self.name!r} runs inside a Worker; to start it here create it with "
                f"debug='stream'"
            )
        if self._process is not None:
            raise StateError(f"node {self.name!r} was started already")
        if _debug_process is None:
            raise StateError("no node runtime is loaded: import chimerapy.node first")
        self._process = _debug_process(self)
        self._process.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the process :meth:`start` began to end (after :meth:`shutdown`)."""
        if self._process is not None:
            self._process.join(timeout)

    def terminate(self) -> None:
        """End the process :meth:`start` began at once, without ``teardown``."""
        if self._process is not None:
            self._process.terminate()

    def is_alive(self) -> bool:
        """True while the process :meth:`start` began is running."""
        return self._process is not None and self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The exit code of the process :meth:`start` began (None while it runs)."""
        return self._process.exitcode if self._process is not None else None

    @property
    def logdir(self) -> Path | None:
        """Where this node's recordings go (a fresh folder for debug modes)."""
        if self._runtime is not None:
            return Path(self._runtime.directory)
        return self._logdir

    @logdir.setter
    def logdir(self, folder: Path | str) -> None:
        """Choose where a debug-mode node records (before it starts recording)."""
        self._logdir = Path(folder)

    @property
    def debug_address(self) -> str | None:
        """The address a ``debug="stream"`` node publishes on, once running."""
        runtime = self._runtime
        return runtime.publisher.addresses.get("debug") if runtime and runtime.publisher else None

    def shutdown(self) -> None:
        """End a debug run: stop the loop, run teardown and close recordings.

        For a node :meth:`start` ran in its own process, this asks that process to finish;
        :meth:`join` waits for it.
        """
        if self._process is not None:
            self._process.stop()
        if self._runtime is not None:
            self._runtime.close()

    # -- internals -------------------------------------------------------------------------------

    def _recorder(self) -> Recorder | SaveCounter:
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
        state["_process"] = None
        state["in_bound_data"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_logdir", None)
        state.setdefault("_process", None)
        state.setdefault("_converted", set())
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _one_of(record: str, method: str, **values: Any) -> Any:
    """The one value given among aliases (``data=`` of 0.0.10 or today's name)."""
    given = [key for key, value in values.items() if value is not None]
    if len(given) > 1:
        raise TypeError(f"{method}({record!r}): give the value once, as one of {', '.join(given)}")
    if not given:
        raise TypeError(f"{method}({record!r}) needs a value ({' or '.join(values)}=...)")
    return values[given[0]]


def _native_audio(data: Any) -> bool:
    """True for blocks the Recorder takes as they are (int16 or float32 arrays)."""
    return getattr(getattr(data, "dtype", None), "name", "") in ("int16", "float32")
