"""FileStore: a Worker's recorded files: list them with checksums, serve them, delete when confirmed.

Recordings live in ``<tempdir>/<session>/<node>/...``. The Manager lists a session (sizes and
SHA-256), downloads each file over HTTP (``GET /files/<session>/<path>``), verifies it, and
only then confirms; a session folder is deleted only after that confirmation.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from ..names import check_name
from ..records.mp4_trim import trim_mp4

__all__ = ["PARTIAL_SUFFIXES", "ROW_SUFFIXES", "FileStore", "sha256_of", "trim_torn_row"]

#: The folder of shipped packages beside the session folders (not a session).
PACKAGES = "packages"
#: Files of unfinished writes (atomic writes, downloads): never archived.
PARTIAL_SUFFIXES = (".tmp", ".part")
#: Files that grow by whole lines (CSV rows, JSON Lines): a last line without its newline is torn.
ROW_SUFFIXES = (".csv", ".jsonl")

log = logging.getLogger(__name__)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while block := file.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def trim_torn_row(path: Path) -> int:
    """Cut a last line that lacks its newline off ``path``; returns the bytes removed (0 if whole)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("r+b") as file:
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return 0
        keep, position = 0, size
        while position > 0:  # find the last newline, reading backwards in blocks
            start = max(0, position - 65536)
            file.seek(start)
            block = file.read(position - start)
            index = block.rfind(b"\n")
            if index >= 0:
                keep = start + index + 1
                break
            position = start
        file.truncate(keep)
    return size - keep




class FileStore:
    """The session folders under ``root``.

    Args:
        root: the Worker's temporary folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.confirmed: set[str] = set()

    def session_dir(self, session: str) -> Path:
        """The folder of ``session`` (raises InvalidNameError, a ValueError, for an id that breaks
        the name rule)."""
        return self.root / check_name("session", session)

    def repair(self, session: str) -> list[dict[str, Any]]:
        """Cut torn tails off ``session``'s files before they are listed; returns what was found.

        A node cut short (killed, or its disk full) can leave a last CSV or JSON Lines row cut
        mid-line, an MP4 fragment half written, or a temporary file of an unfinished atomic
        write. Each is reported (``kind``, ``path``, ``node``, ``message``, ``data_lost``) so
        that the session's report names it; torn tails are cut, partial files not archived.
        """
        folder = self.session_dir(session)
        problems: list[dict[str, Any]] = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = path.relative_to(folder).as_posix()
            node = relative.split("/", 1)[0]
            if path.name.endswith(PARTIAL_SUFFIXES):
                problems.append({"kind": "partial_file", "path": relative, "node": node, "data_lost": False,
                                 "message": f"{relative} is a half-written temporary file; it is not archived"})
                continue
            if path.suffix == ".mp4":
                removed = trim_mp4(path)
                kind, unit = "torn_row", "MP4 fragment"
            elif path.suffix in ROW_SUFFIXES:
                removed = trim_torn_row(path)
                kind, unit = "torn_row", "row"
            else:
                continue
            if removed:
                log.warning("cut a torn %s of %d bytes off %s (its node was cut short)", unit, removed, path)
                problems.append({"kind": kind, "path": relative, "node": node, "data_lost": True,
                                 "message": f"{relative} ended in a torn {unit} ({removed} bytes, cut off "
                                            f"before archiving): its node was cut short while writing"})
        return problems

    def list(self, session: str) -> list[dict[str, Any]]:
        """Every finished file of ``session``: relative path, size and SHA-256 (call :meth:`repair`
        first); half-written temporary files are left out."""
        folder = self.session_dir(session)
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.name.endswith(PARTIAL_SUFFIXES):
                continue
            entries.append({
                "path": path.relative_to(folder).as_posix(),
                "size": path.stat().st_size,
                "sha256": sha256_of(path),
            })
        return entries

    def delete(self, session: str) -> None:
        """Delete ``session``'s folder: call only once the Manager confirmed every file."""
        self.confirmed.add(session)
        shutil.rmtree(self.session_dir(session), ignore_errors=True)

    def unconfirmed(self) -> builtins.list[Path]:
        """Session folders whose files the Manager has not confirmed."""
        if not self.root.exists():
            return []
        found = []
        for path in self.root.iterdir():
            try:
                if (path.is_dir() and path.name not in self.confirmed and path.name != PACKAGES
                        and any(path.rglob("*"))):
                    found.append(path)
            except OSError:  # deleted while looked at (a collect confirming it): not uncollected
                continue
        return found

    def add_routes(self, app: web.Application) -> None:
        """Serve ``GET /files/{session}/{path}``."""
        app.router.add_get("/files/{session}/{path:.+}", self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        try:
            folder = self.session_dir(request.match_info["session"]).resolve()
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        target = (folder / request.match_info["path"]).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            raise web.HTTPNotFound(text=f"no file {request.match_info['path']!r} in this session")
        return web.FileResponse(target)
