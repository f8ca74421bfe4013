"""ChimeraPy audio node pack."""

from chimerapy_nodes_audio.__about__ import __version__

__all__ = ["__version__"]
