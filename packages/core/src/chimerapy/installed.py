"""What is installed, read from the distributions' metadata once per installation.

Reading metadata takes tens of milliseconds, and a Manager needs it at every commit (for
``meta.json``). Installing or removing a distribution adds or removes an entry in an
installation folder (``site-packages``), which changes that folder's modification time:
:func:`per_installation` reads again only then, or when the import path changes.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from .__about__ import __version__

T = TypeVar("T")
INSTALL_FOLDERS = ("site-packages", "dist-packages")


def stamp() -> tuple[object, ...]:
    """The import path, and the modification time of each of its installation folders
    (``site-packages``, ``dist-packages``): one ``stat`` each. Other folders of the path (a
    script's own, which changes with every file made there) are left out."""
    stamps: list[object] = []
    for entry in dict.fromkeys(sys.path):
        stamps.append(entry)
        if os.path.basename(entry) in INSTALL_FOLDERS:
            try:
                stamps.append(os.stat(entry).st_mtime_ns)
            except OSError:
                continue
    return tuple(stamps)


def per_installation(read: Callable[[], T]) -> Callable[[], T]:
    """Cache what ``read()`` returns until :func:`stamp` changes (callers must not change it)."""
    lock = threading.Lock()
    cached: list[tuple[tuple[object, ...], T]] = []

    @functools.wraps(read)
    def current() -> T:
        now = stamp()
        with lock:  # a second caller waits for the first reading instead of doing it again
            if not cached or cached[0][0] != now:
                cached[:] = [(now, read())]
            return cached[0][1]

    return current


@per_installation
def versions() -> dict[str, str]:
    """Versions of Python, the core and every installed ChimeraPy distribution (from the
    ``chimerapy*`` metadata folders only: reading every installed one is slow)."""
    found = {"python": platform.python_version(), "chimerapy-core": __version__}
    for entry in dict.fromkeys(sys.path):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.lower().startswith("chimerapy") and folder.endswith((".dist-info", ".egg-info")):
                dist = importlib.metadata.Distribution.at(os.path.join(entry or ".", folder))
                found.setdefault(dist.metadata["Name"] or "", dist.version)
    return found
