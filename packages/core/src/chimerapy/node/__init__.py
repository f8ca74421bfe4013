"""The node side: :class:`Node` (what users subclass), its runtime, its process and previews."""

from . import debug_process as _debug_process  # noqa: F401 - lets Node.start run a process
from . import runtime as _runtime  # noqa: F401 - gives debug-mode nodes their runtime
from .node import Node

__all__ = ["Node"]
