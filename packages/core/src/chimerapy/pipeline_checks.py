"""One set of checks for a pipeline: everything ``chimerapy run`` verifies before it starts anything.

``chimerapy validate``, ``chimerapy run``, ``Manager.commit_pipeline`` and the REST API (``POST
/api/validate``, ``POST /api/pipeline``, so the dashboard's editor too) all call
:func:`check_pipeline`, so they accept and refuse the same pipelines with the same messages. The
checks, each stage run only when the ones before it found nothing (so one mistake gives one
message, not a cascade):

1. the format, names, references, the mapping, registry names and option names
   (:meth:`chimerapy.pipeline.Pipeline.parse`); options under a former name are renamed, with a
   warning;
2. every option value against the type annotation of its node's constructor (``"fps": "thirty"``);
3. each node's own constructor checks (a negative size, an unknown waveform...);
4. the graph: edges to the node itself, two followed inputs, cycles;
5. when the connected Workers are known (the REST API), every mapped Worker is connected.

Every refusal is a :class:`~chimerapy.pipeline.PipelineError` listing ``(json_path, message)``.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError

from . import registry
from .errors import ChimeraPyError, GraphError
from .graph import Graph
from .node.locate import import_class
from .pipeline import Pipeline, PipelineError, create_from_class, load

if typing.TYPE_CHECKING:
    from .node.node import Node

__all__ = ["CheckedPipeline", "check_pipeline", "not_connected"]

log = logging.getLogger(__name__)


@dataclass
class CheckedPipeline:
    """A pipeline that passed every check, with its graph and mapping built.

    Attributes:
        pipeline: the pipeline, renamed options under their current names.
        graph: its nodes (created, not started) and edges.
        mapping: Worker name -> the names of its nodes.
        warnings: ``(json_path, message)`` pairs that do not stop it (former option names).
    """

    pipeline: Pipeline
    graph: Graph
    mapping: dict[str, list[str]]
    warnings: list[tuple[str, str]] = field(default_factory=list)


def check_pipeline(pipeline: Pipeline | dict[str, Any] | str | Path, *, source: str | None = None,
                   connected: Collection[str] | None = None) -> CheckedPipeline:
    """Run every check on ``pipeline`` (a Pipeline, its JSON as a dict, or a file path).

    Args:
        source: how messages name the pipeline (default: the file's path, else "the pipeline").
        connected: the names of the connected Workers, when known; None skips that check.

    Raises:
        PipelineError: listing every problem of the first stage that found any.
    """
    if isinstance(pipeline, (str, Path)):
        source = source or str(pipeline)
        pipeline = load(pipeline)  # its messages name the file
    elif not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.parse(pipeline, source or "the pipeline")
    else:
        pipeline.check(source or "the pipeline")
    source = source or "the pipeline"
    with registry.snapshot():  # the installed packs are read once, not per node
        return _check(pipeline, source, connected)


def _check(pipeline: Pipeline, source: str, connected: Collection[str] | None) -> CheckedPipeline:
    warnings = _rename_options(pipeline)
    classes, problems = _load_classes(pipeline)
    _raise_any(problems, source)
    _raise_any(_type_problems(pipeline, classes), source)
    nodes, problems = _create_nodes(pipeline)
    _raise_any(problems, source)
    graph, problems = _connect(pipeline, nodes)
    _raise_any(problems, source)
    mapping = {worker: list(names) for worker, names in pipeline.mapping.items()}
    if connected is not None:
        _raise_any([(f"mapping.{worker}", not_connected(worker, sorted(connected)))
                    for worker in mapping if worker not in connected], source)
    return CheckedPipeline(pipeline, graph, mapping, warnings)


def not_connected(worker: str, connected: list[str]) -> str:
    """The message for a mapped Worker that is not connected, with the two ways out."""
    return (f"Worker {worker!r} is not connected (connected: {', '.join(connected) or 'none'}); "
            f"start it (cp-worker ... --name {worker}) or map its nodes to another Worker")


def _raise_any(problems: list[tuple[str, str]], source: str) -> None:
    if problems:
        raise PipelineError(problems, source)


def _rename_options(pipeline: Pipeline) -> list[tuple[str, str]]:
    """Put options given under a former name under the current one; a warning for each."""
    warnings = []
    for index, spec in enumerate(pipeline.nodes):
        if spec.registry is None:  # a class of the user's own: no registry entry, no renames
            continue
        info = registry.find(spec.registry)
        params, notes = registry.current_options(info, spec.params)
        spec.params = params
        warnings += [(f"nodes[{index}].params", note) for note in notes]
    return warnings


def _load_classes(pipeline: Pipeline) -> tuple[dict[int, type], list[tuple[str, str]]]:
    """Each node's class (by its index), from the registry or its ``class`` path."""
    classes, problems = {}, []
    for index, spec in enumerate(pipeline.nodes):
        try:
            if spec.registry is not None:
                classes[index] = registry.load(spec.registry)
            elif spec.class_path is not None:
                classes[index] = import_class(spec.class_path, spec.file)
        except ChimeraPyError as error:
            where = "registry" if spec.registry is not None else "class"
            problems.append((f"nodes[{index}].{where}", str(error).split("\n", 1)[0]))
    return classes, problems


def _type_problems(pipeline: Pipeline, classes: dict[int, type]) -> list[tuple[str, str]]:
    """Each option whose value does not fit the annotation of its node's constructor."""
    problems = []
    for index, spec in enumerate(pipeline.nodes):
        if index not in classes:
            continue
        hints = _constructor_hints(classes[index])
        shown = ({p.name: p.annotation for p in registry.find(spec.registry).parameters}
                 if spec.registry is not None else {})
        for key, value in spec.params.items():
            adapter = _adapter(hints.get(key))
            if adapter is None:
                continue
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                expected = shown.get(key) or hints[key]
                message = f"{spec.registry or spec.class_path}'s option {key!r} takes {expected}, not {value!r} ({_json_type(value)})"
                problems.append((f"nodes[{index}].params.{key}", message))
    return problems


def _constructor_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError, AttributeError) as error:  # a name only a type checker sees
        log.debug("no type hints for %s: %s", cls.__qualname__, error)
        return {}


def _adapter(hint: Any) -> TypeAdapter | None:
    if hint is None or hint is Any:
        return None
    try:
        return TypeAdapter(hint)
    except (PydanticSchemaGenerationError, TypeError):
        return None


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _create_nodes(pipeline: Pipeline) -> tuple[dict[str, Node], list[tuple[str, str]]]:
    nodes, problems = {}, []
    for index, spec in enumerate(pipeline.nodes):
        what = spec.registry or spec.class_path or "?"
        try:
            node = (registry.create(spec.registry, spec.name, **spec.params) if spec.registry is not None
                    else create_from_class(spec))
        except (ChimeraPyError, ValueError, TypeError) as error:
            message = str(error)
            problems.append((f"nodes[{index}]", message if what in message else f"{what}: {message}"))
            continue
        node.restart, node.max_restarts = spec.restart, spec.max_restarts
        nodes[spec.name] = node
    return nodes, problems


def _connect(pipeline: Pipeline, nodes: dict[str, Node]) -> tuple[Graph, list[tuple[str, str]]]:
    graph = Graph()
    graph.add_nodes(nodes.values())
    problems = []
    for index, edge in enumerate(pipeline.edges):
        try:
            graph.add_edge(nodes[edge.source], nodes[edge.target], follow=edge.follow, latest_only=edge.latest_only)
        except GraphError as error:
            problems.append((f"edges[{index}]", str(error)))
    if not problems:
        try:
            graph.validate()
        except GraphError as error:
            problems.append(("edges", f"{error}; remove one of its edges (a pipeline must be acyclic)"))
    return graph, problems
