"""ChimeraPy LSL node pack: Lab Streaming Layer streams in (``lsl.inlet``) and out (``lsl.outlet``).

Registered in the ``chimerapy.nodes`` entry-point group. pylsl (and its liblsl) is imported only
when a node starts, never when the pack is imported or listed. How LSL times and Manager times
map onto each other is explained in :mod:`chimerapy_nodes_lsl.clock`.
"""

from chimerapy_nodes_lsl.__about__ import __version__
from chimerapy_nodes_lsl.clock import ClockMap
from chimerapy_nodes_lsl.errors import LslFormatError, LslStreamNotFoundError
from chimerapy_nodes_lsl.inlet import LslInlet
from chimerapy_nodes_lsl.outlet import LslOutlet
from chimerapy_nodes_lsl.streams import StreamQuery

__all__ = [
    "ClockMap",
    "LslFormatError",
    "LslInlet",
    "LslOutlet",
    "LslStreamNotFoundError",
    "StreamQuery",
    "__version__",
]
