"""Logging entry points of ChimeraPy 0.0.10: ``cp.debug()`` and ``cp._logger.getLogger``.

The library itself only logs through named loggers; :func:`debug` is the one call that installs
a handler, because the user asked for it.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["debug", "getLogger"]

#: ``cp._logger.getLogger("chimerapy")``, as 0.0.10 programs write it.
getLogger = logging.getLogger

_HANDLER_NAME = "chimerapy-debug"


def debug(enable: bool = True) -> None:
    """Turn debug logging of every ``chimerapy`` logger to the terminal (stderr) on or off.

    Calling it again does not add a second handler.
    """
    root = logging.getLogger("chimerapy")
    handlers = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if not enable:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(logging.NOTSET)
        return
    if not handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
