"""Importing a node class again from its name, ``"module:qualname"``, and maybe its file.

``meta.json`` names each node's class (see :mod:`chimerapy.manager.pipeline_record`): a class of
an installed package by its module, a class of a user's script or of a module beside it also by
the file that defines it, so that a rerun started from elsewhere finds it. Classes defined in a
notebook, an interactive session or inside a function cannot be imported again: that fails with
an error that says so.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import RegistryError

__all__ = ["as_node_class", "attribute_at", "import_class"]


def import_class(path: str, file: str | None = None) -> type:
    """The class named ``"module:qualname"``, imported (from ``file`` if its module is not found).

    Raises:
        RegistryError: naming the class, why it cannot be imported, and how to fix it.
    """
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise RegistryError(f"node class {path!r} is not of the form 'module:Class'")
    if "<locals>" in qualname or module_name == "__main__":
        raise RegistryError(
            f"node class {path!r} was defined inside a function, a notebook or an interactive "
            "session and cannot be imported again; move it to a module (a .py file) and import it"
        )
    module = _import(module_name, path, file)
    try:
        target = attribute_at(module, qualname)
    except AttributeError:
        raise RegistryError(
            f"node class {path!r}: module {module_name!r} ({getattr(module, '__file__', '?')}) defines "
            f"no {qualname!r}; was it renamed?"
        ) from None
    return as_node_class(target, f"{path!r} is not a chimerapy.Node class")


def attribute_at(module: ModuleType, qualname: str) -> object:
    """``module``'s object at the dotted ``qualname`` (AttributeError if a part is missing)."""
    target: object = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def as_node_class(target: object, error: str) -> type:
    """``target`` when it is a :class:`~chimerapy.Node` subclass, else RegistryError(``error``)."""
    from .node import Node

    if not (isinstance(target, type) and issubclass(target, Node)):
        raise RegistryError(error)
    return target


def _import(module_name: str, path: str, file: str | None) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name.partition(".")[0] and error.name != module_name:
            raise RegistryError(f"node class {path!r} cannot be imported: {error}") from error
        if file is None:
            raise RegistryError(
                f"node class {path!r} cannot be imported: no module named {module_name!r}; install "
                "the package that provides it, or run from the folder that holds it"
            ) from None
    except Exception as error:  # user code: any import failure is reported
        raise RegistryError(f"node class {path!r} cannot be imported: {type(error).__name__}: {error}") from error
    return _import_file(module_name, path, Path(file))


def _import_file(module_name: str, path: str, file: Path) -> ModuleType:
    if not file.is_file():
        raise RegistryError(
            f"node class {path!r} cannot be imported: no module named {module_name!r}, and the file "
            f"that defined it, {file}, does not exist any more"
        )
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise RegistryError(f"node class {path!r}: {file} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # user code: any import failure is reported
        del sys.modules[module_name]
        raise RegistryError(
            f"node class {path!r}: importing {file} failed: {type(error).__name__}: {error}"
        ) from error
    return module

