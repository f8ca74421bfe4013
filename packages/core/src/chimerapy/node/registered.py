"""Registered methods: node methods that may be called while the node runs.

Mark a method with :func:`register`; its parameters need type annotations (they are checked and
converted from JSON before the call)::

    class Camera(cp.Node):
        @cp.register
        def set_exposure(self, exposure: float) -> None:
            self.exposure = exposure

``Manager.request_registered_method("camera", "set_exposure", {"exposure": 0.01})``, ``POST
/api/nodes/camera/methods/set_exposure`` or the dashboard call it: the node runs it on its own
thread between two steps and the result goes back to the caller; each call is logged into the
session. :func:`describe` lists a class's registered methods for the API and the dashboard.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["BadCall", "call", "describe", "register"]

_F = TypeVar("_F", bound=Callable[..., Any])
_MARK = "__chimerapy_registered__"


class BadCall(ValueError):
    """A call that does not fit the node: an unknown method, or parameters that do not fit it."""


def register(method: _F) -> _F:
    """Let ``method`` be called while the node runs (from Python, the REST API, the dashboard)."""
    setattr(method, _MARK, True)
    return method


def _registered(cls: type) -> dict[str, Callable[..., Any]]:
    return {name: member for name, member in inspect.getmembers(cls, inspect.isfunction)
            if getattr(member, _MARK, False)}


def describe(cls: type) -> list[dict[str, Any]]:
    """Each registered method of ``cls``: name, first docstring line and parameters (name,
    annotation, default as text or None when required)."""
    methods = []
    for name, method in sorted(_registered(cls).items()):
        parameters = list(inspect.signature(method).parameters.values())[1:]  # not self
        methods.append({
            "name": name,
            "doc": (inspect.getdoc(method) or "").split("\n", 1)[0],
            "parameters": [{"name": p.name,
                            "annotation": p.annotation if isinstance(p.annotation, str) else
                            getattr(p.annotation, "__name__", str(p.annotation)),
                            "default": None if p.default is inspect.Parameter.empty else repr(p.default)}
                           for p in parameters],
        })
    return methods


def call(node: Any, name: str, params: Mapping[str, Any] | None) -> Any:
    """Call the registered method ``name`` of ``node`` with ``params`` checked against its annotations.

    Raises:
        BadCall: an unknown method, a missing or unknown parameter, or a value of the wrong type
            (naming the method's registered parameters).
    """
    methods = _registered(type(node))
    if name not in methods:
        known = ", ".join(sorted(methods)) or "none (mark a method with @chimerapy.register)"
        raise BadCall(f"node {node.name!r} has no registered method {name!r}; its registered methods: {known}")
    method = methods[name]
    hints = typing.get_type_hints(method)
    signature = inspect.signature(method)
    try:
        bound = signature.bind(node, **dict(params or {}))
    except TypeError as error:
        wanted = ", ".join(list(signature.parameters)[1:]) or "none"
        raise BadCall(f"{node.name}.{name}: {error} (its parameters: {wanted})") from None
    from pydantic import (  # here: a node process that never calls one starts faster
        TypeAdapter,
        ValidationError,
    )

    arguments = {}
    for key, value in list(bound.arguments.items())[1:]:
        hint = hints.get(key)
        if hint is not None:
            try:
                value = TypeAdapter(hint).validate_python(value, strict=True)
            except ValidationError:
                raise BadCall(f"{node.name}.{name}: {key!r} takes {signature.parameters[key].annotation}, "
                                 f"not {value!r}") from None
        arguments[key] = value
    return method(node, **arguments)
