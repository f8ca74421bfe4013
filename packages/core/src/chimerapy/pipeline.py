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

Local Workers (``remote`` false) are started by ``chimerapy run``; remote ones are waited for.
:func:`load` and :meth:`Pipeline.check` raise :class:`PipelineError` listing every problem with
its JSON path and the fix; :func:`chimerapy.pipeline_checks.check_pipeline` adds the checks that
need the nodes' code (option types, constructors, cycles) and is what the CLI and the API use.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import registry
from .errors import ChimeraPyError, RegistryError
from .graph import Graph

__all__ = ["Pipeline", "PipelineError", "load"]


class PipelineError(ChimeraPyError, ValueError):
    """A pipeline file with problems; ``problems`` holds ``(json_path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "the pipeline") -> None:
        self.problems = problems
        lines = "\n".join(f"  {path or '(top level)'}: {message}" for path, message in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeSpec(_Strict):
    name: str = Field(min_length=1)
    registry: str = Field(min_length=1, description="a name from `chimerapy nodes`")
    params: dict[str, Any] = Field(default_factory=dict)
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
    workers: list[WorkerSpec] = Field(min_length=1)
    nodes: list[NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)
    mapping: dict[str, list[str]]

    @classmethod
    def parse(cls, data: Any, source: str = "the pipeline") -> Pipeline:
        """Validate ``data`` (a dict) fully: shape, references, and against the node registry."""
        try:
            pipeline = cls.model_validate(data)
        except ValidationError as error:
            raise PipelineError([(_json_path(e["loc"]), _explain(e)) for e in error.errors()], source) from None
        pipeline.check(source)
        return pipeline

    def check(self, source: str = "the pipeline", *, registry_check: bool = True) -> None:
        """Check names and references (and registry names and options); raise PipelineError."""
        problems: list[tuple[str, str]] = []
        nodes = [n.name for n in self.nodes]
        workers = [w.name for w in self.workers]
        for kind, names in (("node", nodes), ("worker", workers)):
            for index, name in enumerate(names):
                if names.index(name) != index:
                    problems.append((f"{kind}s[{index}].name", f"a second {kind} named {name!r}; names must be unique"))
        for index, edge in enumerate(self.edges):
            for end in ("source", "target"):
                name = getattr(edge, end)
                if name not in nodes:
                    problems.append((f"edges[{index}].{end}", f"unknown node {name!r}{_close(name, nodes)}"))
        placed: dict[str, str] = {}
        for worker, names in self.mapping.items():
            if worker not in workers:
                problems.append((f"mapping.{worker}", f"unknown worker {worker!r}{_close(worker, workers)}; "
                                 f"declare it under 'workers'"))
            for index, name in enumerate(names):
                if name not in nodes:
                    problems.append((f"mapping.{worker}[{index}]", f"unknown node {name!r}{_close(name, nodes)}"))
                elif name in placed:
                    problems.append((f"mapping.{worker}[{index}]", f"node {name!r} is already mapped to {placed[name]!r}"))
                else:
                    placed[name] = worker
        for index, name in enumerate(nodes):
            if name not in placed:
                problems.append((f"nodes[{index}]", f"node {name!r} is not in the mapping; add it to a worker's list"))
        if registry_check:
            problems += self._registry_problems()
        if problems:
            raise PipelineError(problems, source)

    def _registry_problems(self) -> list[tuple[str, str]]:
        problems = []
        for index, spec in enumerate(self.nodes):
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

    def build(self) -> tuple[Graph, dict[str, list[str]]]:
        """Create the nodes from the registry and return the graph and the mapping (after every
        check of :func:`chimerapy.pipeline_checks.check_pipeline`)."""
        from .pipeline_checks import check_pipeline

        checked = check_pipeline(self)
        return checked.graph, checked.mapping

    @property
    def local_workers(self) -> list[str]:
        return [w.name for w in self.workers if not w.remote]

    @property
    def remote_workers(self) -> list[str]:
        return [w.name for w in self.workers if w.remote]


def load(path: str | Path) -> Pipeline:
    """Read and fully validate the pipeline file at ``path``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError([("", f"no such file: {path}")], str(path)) from None
    except json.JSONDecodeError as error:
        raise PipelineError([("", f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")],
                            str(path)) from None
    return Pipeline.parse(data, str(path))


def _json_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _explain(error: dict) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field; remove it (check the spelling against the pipeline format)"
    return message[0].lower() + message[1:] if message else kind


def _close(word: str, candidates: list[str]) -> str:
    matches = difflib.get_close_matches(word, candidates, n=2)
    return f" (did you mean {', '.join(map(repr, matches))}?)" if matches else ""
