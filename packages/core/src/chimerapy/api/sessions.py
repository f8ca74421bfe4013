"""The archive: the session folders under the Manager's logdir, listed and served read-only.

    GET /api/sessions                    every session (a folder with meta.json), newest first, with
                                         the title given in the dashboard's Review (see :mod:`.review`)
                                         and ``recorded`` (false for a preview that was never recorded)
    GET /api/sessions/{id}/files         its files: paths relative to the session, sizes
    GET /api/sessions/{id}/files/{path}  one file; HTTP range requests work, so a <video> can seek

A path that leaves the session folder (``..``, an absolute path, a link pointing outside) is
refused with 400; an unknown session or file is a 404.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from ..names import RULE, name_problem
from .jsonio import ApiError, json_response

__all__ = ["add_session_routes", "list_files", "list_sessions", "session_folder"]

#: Files being written (a collect in progress, meta.json being replaced): not listed.
_PARTIAL = (".part", ".tmp")


def list_sessions(logdir: Path) -> list[dict[str, Any]]:
    """A summary of each session under ``logdir`` (from its meta.json), newest first."""
    sessions = [_summary(folder) for folder in logdir.iterdir() if (folder / "meta.json").is_file()]
    return sorted(sessions, key=lambda s: (s["created"] or 0.0, s["id"]), reverse=True)


def list_files(folder: Path) -> list[dict[str, Any]]:
    """Every finished file below ``folder`` (links left out): ``{"path": relative POSIX path, "size": bytes}``."""
    return [{"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size}
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.is_symlink() and not path.name.endswith(_PARTIAL)]


def session_folder(logdir: Path, session: str) -> Path:
    """The folder of session ``session`` under ``logdir``.

    Raises:
        ApiError: 400 for an id that breaks the name rule, 404 for one with no ``meta.json``.
    """
    problem = name_problem(session)
    if problem is not None:
        raise ApiError(400, f"session id {session!r} is refused: {problem.reason}; {RULE}")
    folder = logdir / session
    if not (folder / "meta.json").is_file():
        raise ApiError(404, f"there is no session {session!r} in {logdir}; GET /api/sessions lists them")
    return folder


def _summary(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        meta = {"error": f"meta.json cannot be read: {error}"}
    collected = meta.get("collected") or {}
    review = meta.get("review") if isinstance(meta.get("review"), dict) else {}
    return {
        "id": folder.name,
        "created": meta.get("created"),
        "start_time": meta.get("start_time"),
        "stop_time": meta.get("stop_time"),
        "workers": sorted(meta.get("workers") or {}),
        "nodes": [node.get("name") for node in (meta.get("graph") or {}).get("nodes", [])],
        "collected": collected,
        # the session's own verdict (faults included) when it has one, else from the collection
        "complete": bool(meta["complete"]) if "complete" in meta else
                    bool(collected) and all(item.get("complete") for item in collected.values()),
        "faults": meta.get("faults") or [],
        "error": meta.get("error"),
        "title": review.get("title") or None,  # given in the dashboard's Review
        "recorded": meta.get("recorded") is not False,  # False: a preview only, nothing was saved
    }


def add_session_routes(app: web.Application, logdir: Path) -> None:
    """Serve the sessions under ``logdir`` on ``app``."""

    def requested(request: web.Request) -> Path:
        return session_folder(logdir, request.match_info["session"])

    async def sessions(request: web.Request) -> web.Response:
        return json_response({"logdir": str(logdir), "sessions": await asyncio.to_thread(list_sessions, logdir)})

    async def files(request: web.Request) -> web.Response:
        folder = requested(request)
        return json_response({"session": folder.name, "files": await asyncio.to_thread(list_files, folder)})

    async def file(request: web.Request) -> web.FileResponse:
        folder = requested(request)
        relative = request.match_info["path"]
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ApiError(400, f"the path {relative!r} leaves the session folder; use a path that "
                                f"GET /api/sessions/{folder.name}/files lists")
        if not target.is_file():
            raise ApiError(404, f"session {folder.name!r} has no file {relative!r}; "
                                f"GET /api/sessions/{folder.name}/files lists them")
        return web.FileResponse(target)

    app.router.add_get("/api/sessions", sessions)
    app.router.add_get("/api/sessions/{session}/files", files)
    app.router.add_get("/api/sessions/{session}/files/{path:.+}", file)
