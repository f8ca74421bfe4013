"""ChimeraPy ml node pack."""

from chimerapy_nodes_ml.__about__ import __version__

__all__ = ["__version__"]
