"""The node registry: nodes that installed packs declare in the entry-point group ``chimerapy.nodes``.

A pack declares one entry point per node::

    [project.entry-points."chimerapy.nodes"]
    "video.camera" = "chimerapy_nodes_video.camera:Camera"

:func:`available` lists them (package, version, kind, summary, parameters) by reading each
node's source with :mod:`ast`, so listing imports no pack and a broken pack cannot break it.
Summaries, documentation and option descriptions come from the class docstring (its first
paragraph and its ``Args:`` section, as plain text: see :mod:`chimerapy.docstrings`).
:func:`check` imports a node to find out whether it loads; :func:`load` returns its class and
:func:`create` an instance. A node class declares its kind with ``kind = "source" | "step" |
"sink"`` in its body and its summary in the first paragraph of its docstring. An option renamed
in a later version is declared as ``renamed_options = {"old": "new"}`` in the class body: the
old name is hidden from listings and still accepted by pipelines, with a warning.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import importlib.machinery
import importlib.metadata
import logging
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import docstrings
from .errors import RegistryError
from .node.locate import as_node_class, attribute_at

__all__ = ["GROUP", "NodeInfo", "Parameter", "available", "check", "create", "current_options", "find", "load", "snapshot"]

GROUP = "chimerapy.nodes"
#: The registry as read once by :func:`snapshot` (None: read it on every call).
_snapshot: list[NodeInfo] | None = None

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parameter:
    """One constructor option of a node."""

    name: str
    annotation: str = ""
    default: str | None = None  # the default's source text; None when required
    description: str = ""  # from the ``Args:`` section of the class docstring

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class NodeInfo:
    """A node that a pack declares.

    Attributes:
        name: the registry name (``"video.camera"``).
        target: ``"module:Class"``.
        package, version: the distribution declaring it.
        kind: ``"source"``, ``"step"``, ``"sink"`` or ``"?"`` when undeclared.
        summary: the first paragraph of the class docstring, as plain text.
        doc: the whole class docstring, as plain text paragraphs.
        parameters: the constructor's options after ``name``.
        renamed: old option name -> its current name (still accepted, with a warning).
        error: why the node cannot be used (broken pack, name claimed twice), else None.
    """

    name: str
    target: str
    package: str
    version: str
    kind: str = "?"
    summary: str = ""
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)
    error: str | None = None
    doc: str = ""
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.error is not None


@contextlib.contextmanager
def snapshot() -> Iterator[None]:
    """Within this block, the installed packs are read once, not on every lookup.

    Reading the entry points takes milliseconds; checking or building a pipeline of many
    nodes does it once this way.
    """
    global _snapshot
    outer = _snapshot
    _snapshot = outer if outer is not None else available()
    try:
        yield
    finally:
        _snapshot = outer


def available() -> list[NodeInfo]:
    """Every declared node, sorted by name, without importing any pack."""
    if _snapshot is not None:
        return list(_snapshot)
    by_name: dict[str, list[NodeInfo]] = {}
    seen: set[tuple[str, str]] = set()
    for entry in importlib.metadata.entry_points(group=GROUP):
        dist = entry.dist
        package = dist.metadata["Name"] if dist is not None else "?"
        if (entry.name, package) in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add((entry.name, package))
        info = NodeInfo(entry.name, entry.value, package, dist.version if dist is not None else "?")
        by_name.setdefault(entry.name, []).append(_describe(info))
    nodes = []
    for name, claims in sorted(by_name.items()):
        if len(claims) > 1:
            packages = " and ".join(f"{c.package} {c.version}" for c in claims)
            claims = [replace(c, error=f"the name {name!r} is claimed by {packages}; uninstall one") for c in claims]
        nodes.extend(claims)
    return nodes


def find(name: str) -> NodeInfo:
    """The node registered as ``name``.

    Raises:
        RegistryError: for an unknown name (listing close matches) or one claimed twice.
    """
    nodes = available()
    claims = [info for info in nodes if info.name == name]
    if not claims:
        names = [info.name for info in nodes]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        listing = ", ".join(names) if names else "none: install a node pack such as chimerapy-nodes-video"
        raise RegistryError(f"no node is registered as {name!r}{hint} (registered: {listing})")
    if len(claims) > 1:
        raise RegistryError(claims[0].error)
    return claims[0]


def load(name: str) -> type:
    """Import and return the class registered as ``name`` (raises RegistryError if it fails)."""
    info = find(name)
    module_name, _, attribute = info.target.partition(":")
    try:
        cls = attribute_at(importlib.import_module(module_name), attribute)
    except Exception as error:
        raise RegistryError(
            f"node {name!r} from {info.package} {info.version} cannot be loaded: "
            f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        ) from error
    return as_node_class(cls, f"{info.target} (registered as {name!r} by {info.package}) is not a chimerapy.Node")


def current_options(info: NodeInfo, options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``options`` with each renamed option under its current name, and a warning for each rename."""
    current: dict[str, Any] = {}
    warnings = []
    for key, value in options.items():
        new = info.renamed.get(key)
        if new is not None and new not in options:
            warnings.append(f"{info.name}'s option {key!r} is now called {new!r}; rename it (the old name "
                            f"still works for now)")
            key = new
        current[key] = value
    return current, warnings


def create(name: str, node_name: str | None = None, **parameters: Any):
    """An instance of the node registered as ``name``, named ``node_name``.

    Renamed options are accepted under their old names, with a logged warning.
    """
    cls = load(name)
    parameters, warnings = current_options(find(name), parameters)
    for warning in warnings:
        log.warning("%s", warning)
    try:
        return cls(node_name, **parameters) if node_name is not None else cls(**parameters)
    except TypeError as error:
        options = ", ".join(p.name for p in find(name).parameters) or "none"
        raise RegistryError(f"node {name!r}: {error} (its options: {options})") from error


def check(info: NodeInfo) -> NodeInfo:
    """``info`` with ``error`` set if its node fails to import."""
    if info.broken:
        return info
    try:
        load(info.name)
    except RegistryError as error:
        cause = error.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(error).split("\n", 1)[0]
        return replace(info, error=reason)
    return info


def _describe(info: NodeInfo) -> NodeInfo:
    """Fill kind, summary and parameters from the node's source, without importing it."""
    module_name, _, class_name = info.target.partition(":")
    path = _module_source(module_name)
    if path is None:
        return replace(info, error=f"module {module_name!r} is not importable (not found on sys.path)")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError) as error:
        return replace(info, error=f"cannot read {path}: {error}")
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    cls = classes.get(class_name.split(".")[-1])
    if cls is None:
        return replace(info, error=f"{module_name} defines no class {class_name!r}")
    kind, init, renamed = "?", None, None
    for klass in _lineage(cls, classes):
        for statement in klass.body:
            value = _assigned(statement)
            if kind == "?" and isinstance(value, ast.Constant) and isinstance(value.value, str) \
                    and _assigns(statement, "kind"):
                kind = value.value
            if renamed is None and value is not None and _assigns(statement, "renamed_options"):
                renamed = _literal_mapping(value)
            if init is None and isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
                init = statement
    text = ast.get_docstring(cls) or ""
    described = docstrings.arguments(text)
    renamed = renamed or {}
    parameters = tuple(replace(p, description=described.get(p.name, "")) for p in _parameters(init)
                       if p.name not in renamed) if init else ()
    doc = "\n\n".join(docstrings.plain(paragraph) for paragraph in text.split("\n\n"))
    return replace(info, kind=kind, summary=docstrings.summary(text), parameters=parameters, doc=doc,
                   renamed=renamed)


def _assigned(statement: ast.stmt) -> ast.expr | None:
    """The value of ``name = value`` or ``name: type = value``, else None."""
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        return statement.value
    return None


def _literal_mapping(value: ast.expr) -> dict[str, str]:
    try:
        mapping = ast.literal_eval(value)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}


def _lineage(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> list[ast.ClassDef]:
    """``cls`` and its bases defined in the same module, nearest first."""
    lineage, queue = [], [cls]
    while queue:
        klass = queue.pop(0)
        if klass in lineage:
            continue
        lineage.append(klass)
        queue.extend(classes[b.id] for b in klass.bases if isinstance(b, ast.Name) and b.id in classes)
    return lineage


def _assigns(statement: ast.stmt, name: str) -> bool:
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, ast.AnnAssign) else []
    return any(isinstance(target, ast.Name) and target.id == name for target in targets)


def _parameters(init: ast.FunctionDef) -> tuple[Parameter, ...]:
    args = init.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults))[1:]  # drop self
    pairs += list(zip(args.kwonlyargs, args.kw_defaults))
    return tuple(
        Parameter(
            arg.arg,
            ast.unparse(arg.annotation) if arg.annotation is not None else "",
            ast.unparse(default) if default is not None else None,
        )
        for arg, default in pairs
        if arg.arg != "name"
    )


def _module_source(module_name: str) -> Path | None:
    """The source file of ``module_name``, found on sys.path without importing anything."""
    parts = module_name.split(".")
    spec = importlib.machinery.PathFinder.find_spec(parts[0])
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: depth + 1]), spec.submodule_search_locations)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)
