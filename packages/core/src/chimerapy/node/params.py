"""What a node was created with: the arguments of its constructor, kept for ``meta.json``.

Every :class:`~chimerapy.Node` subclass that defines ``__init__`` gets it wrapped (by
``Node.__init_subclass__``): the outermost constructor call binds its arguments to the
signature (defaults applied) and keeps a JSON form of them on the node, so that a session's
``meta.json`` can say how to create the node again. ``name`` is the node's name and is not a
parameter. Values are kept as JSON: numbers, strings, bools, ``None``, lists, dicts with string
keys, paths (as strings), numpy scalars and arrays of up to 10,000 items (as lists). Any other
value (an object, a function, a larger array) is not kept: its parameter is listed as
*unrecorded*, and a rerun names it as one to give.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["MAX_ARRAY_ITEMS", "as_json", "capture_init", "init_params"]

#: Arrays with more items than this are not kept in meta.json.
MAX_ARRAY_ITEMS = 10_000
_KEPT = "_init_params"
_WRAPPED = "__chimerapy_captures__"


class _Unrecorded(Exception):
    """A value with no JSON form."""


def capture_init(cls: type) -> None:
    """Wrap ``cls.__init__`` (if ``cls`` defines one) so that nodes keep their arguments."""
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, _WRAPPED, False):
        return

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if _KEPT not in self.__dict__:  # the outermost call: the class the user instantiated
            self.__dict__[_KEPT] = _bind(init, self, args, kwargs)
        init(self, *args, **kwargs)

    setattr(__init__, _WRAPPED, True)
    cls.__init__ = __init__  # type: ignore[misc]


def init_params(node: object) -> tuple[dict[str, Any], list[str]]:
    """``(params, unrecorded)``: the node's constructor arguments as JSON, and those not kept.

    A node whose class defines no ``__init__`` of its own has no parameters.
    """
    kept = getattr(node, "__dict__", {}).get(_KEPT)
    if kept is None:
        return {}, []
    params, unrecorded = kept
    return dict(params), list(unrecorded)


def _bind(
    init: Callable[..., None], node: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], list[str]] | None:
    try:
        bound = inspect.signature(init).bind(node, *args, **kwargs)
    except (TypeError, ValueError):
        return None  # the constructor itself will say what is wrong with the call
    bound.apply_defaults()
    values: dict[str, Any] = {}
    for position, (name, value) in enumerate(bound.arguments.items()):
        kind = bound.signature.parameters[name].kind
        if position == 0 or name == "name":
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                values[f"*{name}"] = _Unrecorded
        else:
            values[name] = value
    params: dict[str, Any] = {}
    unrecorded: list[str] = []
    for name, value in values.items():
        try:
            if value is _Unrecorded:
                raise _Unrecorded
            params[name] = as_json(value)
        except _Unrecorded:
            unrecorded.append(name)
    return params, unrecorded


def as_json(value: Any) -> Any:
    """``value`` as plain JSON data (see the module docstring); raises _Unrecorded otherwise."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unrecorded
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return as_json(value.item())
    if isinstance(value, np.ndarray):
        if value.size > MAX_ARRAY_ITEMS or value.dtype.hasobject:
            raise _Unrecorded
        return as_json(value.tolist())
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: as_json(item) for key, item in value.items()}
    raise _Unrecorded
