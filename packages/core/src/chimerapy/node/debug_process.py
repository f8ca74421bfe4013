"""A ``debug="stream"`` node in a process of its own: what :meth:`chimerapy.Node.start` runs.

The child builds the node's local runtime (publishing on ``debug_port``, recording into
``node.logdir``), runs ``prep`` and the loop, and on :meth:`NodeProcess.stop` ends the loop,
runs ``teardown`` and closes the recordings before it exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from typing import Any

from .node import Node, use_debug_process
from .runtime import local_runtime

__all__ = ["NodeProcess"]

log = logging.getLogger(__name__)


class NodeProcess:
    """Runs ``node`` in a child process until :meth:`stop`; ``join``/``terminate`` as a Process.

    Forked where the platform allows it (so classes defined in ``__main__`` need no import),
    spawned elsewhere (the node is pickled).
    """

    def __init__(self, node: Node) -> None:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        context: Any = multiprocessing.get_context(method)
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(node, self._stop), name=f"chimerapy-debug-{node.name}", daemon=True
        )

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._process.join(timeout)

    def terminate(self) -> None:
        if self._process.is_alive():
            self._process.terminate()

    def is_alive(self) -> bool:
        return self._process.is_alive()


def _serve(node: Node, stop: Any) -> None:
    """The child: prep and loop until told to stop, then teardown and close; exit 1 if prep fails."""
    runtime = local_runtime(node, node.logdir)
    try:
        runtime.run_stream(blocking=False)
    except RuntimeError:
        log.exception("debug node %s could not start", node.name)
        runtime.close()
        sys.exit(1)
    stop.wait()
    runtime.close()


use_debug_process(NodeProcess)
