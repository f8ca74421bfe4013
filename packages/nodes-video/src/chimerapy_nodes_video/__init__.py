"""ChimeraPy video node pack."""

from chimerapy_nodes_video.__about__ import __version__

__all__ = ["__version__"]
