"""Pipeline files: a whole pipeline (nodes by registry name, edges, Workers, mapping) as JSON.

    {
      "name": "demo", "logdir": "runs", "runtime": 10,
      "manager": {"host": "127.0.0.1", "port": 0},
      "workers": [{"name": "laptop"}, {"name": "lab-pc", "remote": true}],
      "nodes": [{"name": "camera", "registry": "video.test_pattern", "params": {"fps": 30}},
                {"name": "video", "registry": "video.recorder"}],
      "edges": [{"source": "camera", "target": "video"}],
      "mapping": {"laptop": ["camera", "video"]}
    }

A node is named by ``registry`` (a registered node) or by ``class`` (``"module:Class"``, with
``file``, the file defining it, when its module is not importable from where the pipeline runs).
A session's ``meta.json`` holds such a file (``pipeline``), so :func:`load` takes one too.
Local Workers (``remote`` false) are started by ``chimerapy run``; remote ones are waited for.
:func:`load` and :meth:`Pipeline.check` raise :class:`PipelineError` listing every problem with
its JSON path and the fix; :func:`chimerapy.pipeline_checks.check_pipeline` adds the checks that
need the nodes' code (option types, constructors, cycles) and is what the CLI and the API use.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import registry
from .errors import ChimeraPyError, RegistryError
from .names import RULE, name_problem
from .node.locate import import_class

__all__ = ["MAX_EDGES", "MAX_NODES", "MAX_WORKERS", "Pipeline", "PipelineError", "create_from_class", "load", "pipeline_of_session"]

#: The most nodes a pipeline may hold.
MAX_NODES = 1000
#: The most edges a pipeline may hold.
MAX_EDGES = 10 * MAX_NODES
#: The most Workers a pipeline may declare.
MAX_WORKERS = 1000
#: Unknown names get "did you mean" suggestions for this many problems at most (each one
#: compares the name with every node's).
MAX_SUGGESTIONS = 20


class PipelineError(ChimeraPyError, ValueError):
    """A pipeline file with problems; ``problems`` holds ``(json_path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "the pipeline") -> None:
        self.problems = problems
        lines = "\n".join(f"  {path or '(top level)'}: {message}" for path, message in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeSpec(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    registry: str | None = Field(default=None, min_length=1, description="a name from `chimerapy nodes`")
    class_path: str | None = Field(default=None, alias="class", min_length=3,
                                   description="'module:Class', for a node that is not registered")
    file: str | None = Field(default=None, description="the file defining `class`, if not importable")
    params: dict[str, Any] = Field(default_factory=dict)
    unrecorded: list[str] = Field(default_factory=list, description="parameters a session could not keep")
    restart: Literal["never", "on-failure"] = "never"
    max_restarts: int = Field(default=3, ge=0)


class EdgeSpec(_Strict):
    source: str
    target: str
    follow: bool = False
    latest_only: bool | None = None


class WorkerSpec(_Strict):
    name: str = Field(min_length=1)
    remote: bool = False


class ManagerSpec(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)


class Pipeline(_Strict):
    """A pipeline as read from a file; see the module docstring for the format."""

    name: str = "pipeline"
    logdir: str = "runs"
    runtime: float | None = Field(default=None, gt=0, description="seconds; null: until Ctrl-C")
    manager: ManagerSpec = Field(default_factory=ManagerSpec)
    workers: list[WorkerSpec] = Field(min_length=1, max_length=MAX_WORKERS)
    nodes: list[NodeSpec] = Field(min_length=1, max_length=MAX_NODES)
    edges: list[EdgeSpec] = Field(default_factory=list, max_length=MAX_EDGES)
    mapping: dict[str, list[str]]

    @classmethod
    def parse(cls, data: Any, source: str = "the pipeline") -> Pipeline:
        """Validate ``data`` (a dict) fully: shape, references, and against the node registry.

        A pipeline over the size limits (:data:`MAX_NODES`, :data:`MAX_EDGES`, :data:`MAX_WORKERS`)
        is refused before anything else is looked at.
        """
        oversize = _oversize(data)
        if oversize:
            raise PipelineError(oversize, source)
        try:
            pipeline = cls.model_validate(data)
        except ValidationError as error:
            raise PipelineError([(_json_path(e["loc"]), _explain(e)) for e in error.errors()], source) from None
        pipeline.check(source)
        return pipeline

    def check(self, source: str = "the pipeline", *, registry_check: bool = True) -> None:
        """Check names and references (and registry names and options); raise PipelineError.

        Linear in the size of the pipeline: 1,000 nodes are checked in milliseconds.
        """
        problems: list[tuple[str, str]] = []
        suggest = _Suggestions()
        nodes = [n.name for n in self.nodes]
        for index, spec in enumerate(self.nodes):
            if spec.registry is None and spec.class_path is None:
                problems.append((f"nodes[{index}]",
                                 "give 'registry' (a name from `chimerapy nodes`) or 'class' ('module:Class')"))
        workers = [w.name for w in self.workers]
        node_set, worker_set = set(nodes), set(workers)
        for kind, label, names in (("node", "node", nodes), ("worker", "Worker", workers)):
            seen: set[str] = set()
            for index, name in enumerate(names):
                problem = name_problem(name)
                if problem is not None:
                    problems.append((f"{kind}s[{index}].name", (f"{label} name {name!r} is refused: "
                                                                f"{problem.reason}; {RULE}")))
                if name in seen:
                    problems.append((f"{kind}s[{index}].name", f"a second {kind} named {name!r}; names must be unique"))
                seen.add(name)
        for index, edge in enumerate(self.edges):
            for end in ("source", "target"):
                name = getattr(edge, end)
                if name not in node_set:
                    problems.append((f"edges[{index}].{end}", f"unknown node {name!r}{suggest(name, nodes)}"))
        placed: dict[str, str] = {}
        for worker, names in self.mapping.items():
            if worker not in worker_set:
                problems.append((f"mapping.{worker}", (f"unknown worker {worker!r}{suggest(worker, workers)}; "
                                 f"declare it under 'workers'")))
            for index, name in enumerate(names):
                if name not in node_set:
                    problems.append((f"mapping.{worker}[{index}]", f"unknown node {name!r}{suggest(name, nodes)}"))
                elif name in placed:
                    problems.append((f"mapping.{worker}[{index}]", f"node {name!r} is already mapped to {placed[name]!r}"))
                else:
                    placed[name] = worker
        for index, name in enumerate(nodes):
            if name not in placed:
                problems.append((f"nodes[{index}]", f"node {name!r} is not in the mapping; add it to a worker's list"))
        if registry_check:
            with registry.snapshot():
                problems += self._registry_problems()
        if problems:
            raise PipelineError(problems, source)

    def _registry_problems(self) -> list[tuple[str, str]]:
        problems = []
        for index, spec in enumerate(self.nodes):
            if spec.unrecorded:
                names = ", ".join(spec.unrecorded)
                problems.append((f"nodes[{index}].params",
                                 f"{names} could not be recorded (not JSON data); give their values in params"))
            if spec.registry is None:
                problems += _class_problems(index, spec)
                continue
            try:
                info = registry.find(spec.registry)
            except RegistryError as error:
                problems.append((f"nodes[{index}].registry", str(error)))
                continue
            if info.broken:
                problems.append((f"nodes[{index}].registry", f"{spec.registry!r} cannot be used: {info.error}"))
                continue
            known = [p.name for p in info.parameters] + list(info.renamed)  # former names still work
            for key in spec.params:
                if known and key not in known:
                    problems.append((f"nodes[{index}].params.{key}",
                                     f"{spec.registry} has no option {key!r}{_close(key, known)}; its options: {', '.join(known)}"))
            for parameter in info.parameters:
                if parameter.required and parameter.name not in spec.params:
                    problems.append((f"nodes[{index}].params", f"{spec.registry} needs the option {parameter.name!r}"))
        return problems


    @property
    def local_workers(self) -> list[str]:
        return [w.name for w in self.workers if not w.remote]

    @property
    def remote_workers(self) -> list[str]:
        return [w.name for w in self.workers if w.remote]


def load(path: str | Path) -> Pipeline:
    """Read and fully validate the pipeline file at ``path``.

    ``path`` may also be a session's ``meta.json``, or its session folder: the pipeline that
    recorded it is run again (see :func:`pipeline_of_session`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "meta.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "session" in data:  # a session's meta.json
            data = pipeline_of_session(data, path)
    except FileNotFoundError:
        raise PipelineError([("", f"no such file: {path}")], str(path)) from None
    except json.JSONDecodeError as error:
        raise PipelineError([("", f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")],
                            str(path)) from None
    except (ValueError, TypeError) as error:  # a meta.json without a pipeline
        raise PipelineError([("pipeline", str(error))], str(path)) from None
    return Pipeline.parse(data, str(path))


def pipeline_of_session(meta: Mapping[str, Any], meta_path: Path) -> dict[str, Any]:
    """The pipeline file that reruns the session whose ``meta.json`` (at ``meta_path``) is ``meta``.

    The new session goes beside the old one (``logdir``: the session folder's parent); the run
    lasts the recorded pipeline's run time, else as long as the session ran.

    Raises:
        ValueError: for a ``meta.json`` that holds no pipeline (older versions wrote none).
        TypeError: for a ``pipeline`` that is not a JSON object.
    """
    pipeline = meta.get("pipeline") if isinstance(meta, Mapping) else None
    if pipeline is None:
        raise ValueError(
            f"{meta_path} holds no pipeline description: the session was recorded by an older "
            "version of ChimeraPy, which did not keep one; rebuild the pipeline file by hand"
        )
    pipeline = {**pipeline}  # TypeError if it is not an object
    pipeline["logdir"] = str(meta_path.resolve().parent.parent)
    start, stop = meta.get("start_time"), meta.get("stop_time")
    if pipeline.get("runtime") is None and isinstance(start, (int, float)) and isinstance(stop, (int, float)):
        pipeline["runtime"] = max(round(stop - start, 3), 0.001)
    return pipeline


def _class_problems(index: int, spec: NodeSpec) -> list[tuple[str, str]]:
    """Whether the class of a node given by ``class`` imports and takes its params."""
    assert spec.class_path is not None
    try:
        cls = import_class(spec.class_path, spec.file)
    except RegistryError as error:
        return [(f"nodes[{index}].class", str(error))]
    try:
        _signature_of(cls, spec)
    except TypeError as error:
        return [(f"nodes[{index}].params", f"{spec.class_path}: {error}")]
    return []


def _signature_of(cls: type, spec: NodeSpec) -> dict[str, Any]:
    """The keyword arguments that create ``spec``'s node (``name`` if the class takes one)."""
    parameters = inspect.signature(cls).parameters
    arguments = {**({"name": spec.name} if "name" in parameters else {}), **spec.params}
    inspect.signature(cls).bind(**arguments)
    return arguments


def create_from_class(spec: NodeSpec) -> Any:
    """The node of a spec given by ``class``."""
    assert spec.class_path is not None
    cls = import_class(spec.class_path, spec.file)
    node = cls(**_signature_of(cls, spec))
    node.name = spec.name
    return node


def _json_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _explain(error: Any) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field; remove it (check the spelling against the pipeline format)"
    return message[0].lower() + message[1:] if message else kind


def _close(word: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(word, candidates, n=2)
    return f" (did you mean {', '.join(map(repr, matches))}?)" if matches else ""


class _Suggestions:
    """``_close`` for the first :data:`MAX_SUGGESTIONS` unknown names only (it is the costly part)."""

    def __init__(self) -> None:
        self.left = MAX_SUGGESTIONS

    def __call__(self, word: str, candidates: list[str]) -> str:
        if self.left <= 0:
            return ""
        self.left -= 1
        return _close(word, candidates)


def _oversize(data: Any) -> list[tuple[str, str]]:
    """Problems for lists over the size limits, found without validating their items."""
    if not isinstance(data, dict):
        return []
    problems = []
    for key, limit in (("nodes", MAX_NODES), ("edges", MAX_EDGES), ("workers", MAX_WORKERS)):
        items = data.get(key)
        if isinstance(items, list) and len(items) > limit:
            problems.append((key, (f"{len(items)} {key}: a pipeline holds at most {limit} {key}; "
                                  f"split it into several pipelines")))
    return problems
