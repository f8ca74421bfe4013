"""A Worker's scratch folder, held by one live Worker at a time.

Recordings wait in ``<tmp>/chimerapy-<uid>/worker-<name>`` until the Manager confirms it has
them, so that a Worker restarted under the same name still has them to give. Two Workers of one
name and user running at once must not share it (one would delete what the other has not yet
sent): the folder is held with an exclusive ``flock`` on its ``.lock`` file for the Worker's life
(the kernel lets go when the process dies), and a second live Worker of that name gets
``worker-<name>~2`` (``~`` is in no valid name, so no other Worker's folder is taken).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsafePathError
from ..private import FILE_MODE, private_folder, scratch_base

__all__ = ["Scratch", "claim_scratch"]

LOCK_FILE = ".lock"
MAX_SIBLINGS = 64


@dataclass
class Scratch:
    """A claimed scratch folder; :meth:`release` lets the next Worker of the name have it."""

    folder: Path
    lock: int

    def release(self) -> None:
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1


def claim_scratch(name: str) -> Scratch:
    """The first of ``worker-<name>``, ``worker-<name>~2``, ... that no live Worker holds (private).

    Raises:
        UnsafePathError: a folder is not private (see :func:`chimerapy.private.private_folder`),
            or :data:`MAX_SIBLINGS` Workers of this name already run.
    """
    base = scratch_base()
    for number in range(1, MAX_SIBLINGS + 1):
        folder = private_folder(base / (f"worker-{name}" if number == 1 else f"worker-{name}~{number}"))
        lock = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        return Scratch(folder, lock)
    raise UnsafePathError(f"{MAX_SIBLINGS} Workers named {name!r} already run as this user on this host; "
                          "shut some down or give this one another name", path=str(base))
