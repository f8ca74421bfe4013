"""Nodes that ship with the core: ``core.recorder`` records any stream, ``core.replay`` plays
a recorded session back into a pipeline.

Both are registered in the ``chimerapy.nodes`` entry-point group like any pack's nodes, so a
pipeline file names them by registry name. Importing this package imports neither.
"""

from __future__ import annotations

__all__: list[str] = []
