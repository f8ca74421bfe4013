"""FileStore: a Worker's recorded files: list them with checksums, serve them, delete when confirmed.

Recordings live in ``<tempdir>/<session>/<node>/...``. The Manager lists a session (sizes and
SHA-256), downloads each file over HTTP (``GET /files/<session>/<path>``), verifies it, and
only then confirms; a session folder is deleted only after that confirmation.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from ..names import check_name
from ..records.mp4_trim import trim_mp4

__all__ = ["FileStore", "sha256_of"]

log = logging.getLogger(__name__)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while block := file.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


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

    def list(self, session: str) -> list[dict[str, Any]]:
        """Every file of ``session``: relative path, size and SHA-256 (torn MP4 tails trimmed)."""
        folder = self.session_dir(session)
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix == ".mp4":
                removed = trim_mp4(path)
                if removed:
                    log.warning("trimmed %d torn bytes off %s (its node was cut short)", removed, path)
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

    def unconfirmed(self) -> list[Path]:
        """Session folders whose files the Manager has not confirmed."""
        if not self.root.exists():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and p.name not in self.confirmed and any(p.rglob("*"))]

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
