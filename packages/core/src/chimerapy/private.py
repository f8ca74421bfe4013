"""Private folders and files: what only this process's user may read (scratch, archive, secrets).

Folders are created 0700 and files 0600, whatever the umask. A folder that already exists is used
only when this user owns it, it is a real folder (not a link) and no other user may enter or
write it; otherwise :class:`~chimerapy.errors.UnsafePathError` names the folder and the fix,
and nothing is written there: another user who pre-creates a predictable path must not be
able to read, plant or swap what ChimeraPy puts there.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import UnsafePathError

__all__ = ["FILE_MODE", "FOLDER_MODE", "make_folders", "private_folder", "scratch_base", "write_private"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path | str, *, mode: int = FOLDER_MODE) -> Path:
    """Create ``path`` (and missing parents) as a private folder, or check the existing one.

    Args:
        path: the folder.
        mode: its permissions when created; an existing folder may not be wider than this.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        UnsafePathError: the folder exists but is a link, is not a folder, belongs to another
            user or is open to others beyond ``mode``.
    """
    folder = Path(path)
    if not folder.parent.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=mode)
        os.chmod(folder, mode)  # mkdir's mode is masked by the umask
        return folder
    except FileExistsError:
        pass
    info = folder.lstat()
    fix = f"remove it (rm -rf {folder}, as its owner or root) and start again, or choose another folder"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{folder} should be a private folder but is a link or a file; {fix}", path=str(folder))
    if info.st_uid != os.geteuid():
        raise UnsafePathError(
            f"{folder} belongs to another user (uid {info.st_uid}, this process runs as uid {os.geteuid()}), "
            f"who could read or plant files in it; {fix}", path=str(folder))
    wider = stat.S_IMODE(info.st_mode) & ~mode
    if wider & 0o077:
        raise UnsafePathError(
            f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o}, at most {mode:o} is allowed); "
            f"run chmod {mode:o} {folder} if nothing foreign is in it, or {fix}", path=str(folder))
    return folder


def make_folders(path: Path | str, *, mode: int = FOLDER_MODE) -> Path:
    """Create ``path`` and every missing folder above it with ``mode`` (0700), not the umask's."""
    target = Path(path)
    missing, folder = [], target
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=mode, exist_ok=True)
    return target


def scratch_base() -> Path:
    """This user's private base folder for temporary recordings: ``<tmp>/chimerapy-<uid>`` (0700)."""
    return private_folder(Path(tempfile.gettempdir()) / f"chimerapy-{os.geteuid()}")


def write_private(path: Path | str, data: bytes, *, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to ``path`` created with ``mode`` (0600) from the first byte (atomic replace)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have narrowed it; never widened
            file.write(data)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)
    return target
