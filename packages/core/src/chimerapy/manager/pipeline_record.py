"""The pipeline as a session records it in ``meta.json``, and back, so that a session can be rerun.

``meta.json``'s ``pipeline`` is a pipeline file (see :mod:`chimerapy.pipeline`) describing what
was committed, whether it came from a pipeline file or from Python:

* ``name`` (the pipeline file's, else the script's file name), ``logdir``, ``runtime`` (the
  pipeline file's, else ``null``), ``manager`` (host and port);
* ``workers``: each Worker's ``name`` and ``remote`` (on another computer than the Manager);
  their host and package versions are in ``meta.json``'s ``workers`` and ``versions``;
* ``nodes``: ``name`` (the node's unique name, see :meth:`chimerapy.Graph.unique_names`: a
  pipeline file's names are unique, so a second node named ``cam`` is rerun as ``cam-2``), ``class`` (``"module:qualname"``), ``registry`` (its registry name, when
  its class is a registered node), ``file`` (the file that defines a class of the user's own
  code), ``params`` (the constructor's arguments, see :mod:`chimerapy.node.params`),
  ``unrecorded`` (parameters whose values could not be kept), ``restart``, ``max_restarts``;
* ``edges`` with ``follow`` (set on the input each node steps on) and ``latest_only``;
  ``mapping``.

:func:`chimerapy.pipeline.pipeline_of_session` turns a ``meta.json`` back into a pipeline file for
``chimerapy run SESSION/meta.json``. :func:`edge_statistics` lists the per-edge delivery
counters of a stopped run, for ``meta.json``'s ``edges``.
"""

from __future__ import annotations

import importlib.metadata
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import installed, registry
from ..node.params import init_params
from .commit_plan import CommitPlan, _is_user_module

if TYPE_CHECKING:
    from ..pipeline import Pipeline

__all__ = ["class_path", "describe_pipeline", "edge_statistics", "with_pipeline_file"]


def describe_pipeline(
    plan: CommitPlan,
    workers: Mapping[str, Mapping[str, Any]],
    *,
    logdir: Path,
    manager_host: str,
    manager_port: int,
) -> dict[str, Any]:
    """The pipeline file of what ``plan`` commits (see the module docstring).

    Args:
        plan: the commit plan (graph and placement).
        workers: Worker name -> the registration info it sent (``hostname``...).
        logdir: the Manager's log directory.
        manager_host, manager_port: where the Manager listens.
    """
    graph, unique = plan.graph, plan.unique
    registered = registry_names()
    nodes = []
    for node in graph.nodes:
        path, file = class_path(type(node))
        params, unrecorded = init_params(node)
        spec: dict[str, Any] = {"name": unique[node], "class": path}
        if path in registered:
            spec["registry"] = registered[path]
        if file is not None:
            spec["file"] = file
        spec["params"] = params
        if unrecorded:
            spec["unrecorded"] = unrecorded
        spec.update(restart=getattr(node, "restart", "never"), max_restarts=int(getattr(node, "max_restarts", 3)))
        nodes.append(spec)
    edges = []
    for node in graph.nodes:
        followed = graph.followed(node)
        for source, options in graph.inputs(node):
            edges.append({"source": unique[source], "target": unique[node], "follow": source is followed,
                          "latest_only": bool(options.get("latest_only"))})
    here = socket.gethostname()
    return {
        "name": _script_name(),
        "logdir": str(logdir),
        "runtime": None,
        "manager": {"host": manager_host, "port": manager_port},
        "workers": [{"name": name, "remote": workers.get(name, {}).get("hostname", here) != here}
                    for name in plan.workers()],
        "nodes": nodes,
        "edges": edges,
        "mapping": {w: [n for n, pw in plan.placement.items() if pw == w] for w in plan.workers()},
    }


def with_pipeline_file(description: Mapping[str, Any], pipeline: Pipeline) -> dict[str, Any]:
    """``description`` with what only the pipeline file knows: name, run time, remote Workers."""
    remote = set(pipeline.remote_workers)
    return {
        **description,
        "name": pipeline.name,
        "runtime": pipeline.runtime,
        "manager": pipeline.manager.model_dump(),
        "workers": [{"name": w["name"], "remote": w["name"] in remote} for w in description.get("workers", [])],
    }


def edge_statistics(final_stats: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each edge's delivery counters (received, lost, skipped, latency...) from the nodes' stats."""
    return [
        {"source": producer, "target": node, **counters}
        for node, stats in final_stats.items()
        for producer, counters in (stats.get("inputs") or {}).items()
    ]


def class_path(cls: type) -> tuple[str, str | None]:
    """``("module:qualname", file)`` of a node class (see :mod:`chimerapy.node.locate`).

    ``file`` is the file defining a class of the user's own code (a script or a module that no
    installed package provides), else None. A script's module ``__main__`` is named after it.
    """
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    name = cls.__module__
    if name == "__main__" and file:
        name = Path(file).stem
    own = file is not None and module is not None and (cls.__module__ == "__main__" or _is_user_module(module))
    return f"{name}:{cls.__qualname__}", (str(Path(file).resolve()) if own and file else None)


@installed.per_installation
def registry_names() -> dict[str, str]:
    """``"module:qualname"`` -> registry name, for every registered node (no pack imported)."""
    names: dict[str, str] = {}
    for entry in importlib.metadata.entry_points(group=registry.GROUP):
        names.setdefault(entry.value.replace(" ", ""), entry.name)
    return names


def _script_name() -> str:
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).stem if file else "pipeline"
