"""A Manager in a process of its own, for the tests that kill it.

``python lone_manager.py LOGDIR WORKER NODE_CLASS`` prints ``<port> <fingerprint>`` once it serves,
waits for the Worker ``WORKER``, runs one node of the class ``NODE_CLASS`` of :mod:`support.nodes`
on it (named after the class in lower case), prints ``running <session id>`` and waits to be killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chimerapy as cp

from support import nodes


def spawn(logdir: Path, worker: str, node_class: str, env: dict[str, str]) -> subprocess.Popen:
    """Start it (its stdout a text pipe); the test reads its lines and kills it."""
    return subprocess.Popen([sys.executable, __file__, str(logdir), worker, node_class], env=env,
                            stdout=subprocess.PIPE, text=True)


def main(logdir: str, worker: str, node_class: str) -> None:
    manager = cp.Manager(logdir=logdir, port=0)
    print(manager.port, manager.fingerprint, flush=True)
    assert manager.wait_for_workers([worker], timeout=60)
    graph = cp.Graph()
    graph.add_node(getattr(nodes, node_class)(node_class.lower()))
    manager.commit_graph(graph, {worker: [node_class.lower()]})
    manager.start()
    print("running", manager.session.id, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:])
