"""The REST routes behind the dashboard's pipeline editor: check, save and load pipelines.

    POST /api/validate                every check ``chimerapy run`` makes (see
                                      :mod:`chimerapy.pipeline_checks`) and that the mapped Workers
                                      are connected: 200 ``{"ok": true, "warnings", "nodes", "edges"}``,
                                      or 200 ``{"ok": false, "error", "problems"}`` (``{"path",
                                      "message"}`` each: the answer to a check, not a refusal)
    GET  /api/pipelines               the saved pipelines: name, path, size, modification time
    GET  /api/pipelines/{name}        one saved pipeline (the JSON ``chimerapy run`` takes)
    PUT  /api/pipelines/{name}        save the body as ``<logdir>/pipelines/<name>.json`` once it
                                      passes the checks (Workers need not be connected)
    GET  /api/sessions/{id}/pipeline  the pipeline a past session ran (its ``meta.json``)

The node registry (with each node's documentation and options) is ``GET /api/registry``; commit,
start and stop are ``POST /api/pipeline``, ``/api/start`` and ``/api/stop`` (:mod:`.rest`).
Saved files are private to the Manager's user (folder 0700, files 0600); names are checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..pipeline import PipelineError
from ..pipeline_checks import CheckedPipeline, check_pipeline
from .jsonio import ApiError, json_response, read_json

if TYPE_CHECKING:
    from .served import ServedManager

__all__ = ["PIPELINE_NAME", "add_editor_routes", "pipelines_folder"]

#: What a saved pipeline may be called (the file is ``<name>.json``).
PIPELINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def pipelines_folder(logdir: Path) -> Path:
    """Where the editor saves pipelines: ``<logdir>/pipelines`` (created 0700)."""
    folder = logdir / "pipelines"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def add_editor_routes(app: web.Application, manager: ServedManager) -> None:
    """Register the editor's routes on ``app``."""

    def summary(checked: CheckedPipeline) -> dict[str, Any]:
        return {"ok": True, "warnings": [{"path": p, "message": m} for p, m in checked.warnings],
                "nodes": checked.graph.names(), "edges": len(checked.pipeline.edges)}

    async def pipeline_body(request: web.Request) -> dict[str, Any]:
        data = await read_json(request, what="a pipeline (the contents of a pipeline file)")
        if not isinstance(data, dict):
            raise ApiError(400, f"the body is a JSON {type(data).__name__}; send a pipeline as a JSON object "
                                f"with nodes, edges, workers and mapping")
        return data

    def saved_path(request: web.Request) -> Path:
        name = request.match_info["name"].removesuffix(".json")
        if not PIPELINE_NAME.fullmatch(name):
            raise ApiError(400, f"{name!r} is not a pipeline name: use letters, digits, '.', '_' or '-' "
                                f"(at most 64, starting with a letter or digit)")
        return pipelines_folder(manager.root_logdir) / f"{name}.json"

    async def validate(request: web.Request) -> web.Response:
        data = await pipeline_body(request)
        try:
            checked = await asyncio.to_thread(check_pipeline, data, source="the pipeline",
                                              connected=sorted(manager.workers))
        except PipelineError as error:
            return json_response({"ok": False, "error": str(error),
                                  "problems": [{"path": p, "message": m} for p, m in error.problems]})
        return json_response(summary(checked))

    async def list_saved(request: web.Request) -> web.Response:
        def listing() -> list[dict[str, Any]]:
            files = sorted(pipelines_folder(manager.root_logdir).glob("*.json"))
            return [{"name": path.stem, "path": str(path), "size": path.stat().st_size,
                     "modified": path.stat().st_mtime} for path in files]

        return json_response({"folder": str(pipelines_folder(manager.root_logdir)),
                              "pipelines": await asyncio.to_thread(listing)})

    async def load_saved(request: web.Request) -> web.Response:
        path = saved_path(request)
        if not path.is_file():
            raise ApiError(404, f"no pipeline is saved as {path.stem!r}; GET /api/pipelines lists them")
        return json_response(json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8")))

    async def save(request: web.Request) -> web.Response:
        path = saved_path(request)
        data = await pipeline_body(request)
        data.setdefault("name", path.stem)
        checked = await asyncio.to_thread(check_pipeline, data, source=f"pipeline {path.stem!r}")
        text = json.dumps(checked.pipeline.model_dump(mode="json", exclude_defaults=True), indent=2) + "\n"
        await asyncio.to_thread(_write_private, path, text)
        return json_response({**summary(checked), "name": path.stem, "path": str(path)})

    async def session_pipeline(request: web.Request) -> web.Response:
        session = request.match_info["session"]
        meta_file = manager.root_logdir / session / "meta.json"
        if session in (".", "..") or "/" in session or not meta_file.is_file():
            raise ApiError(404, f"there is no session {session!r} in {manager.root_logdir}; GET /api/sessions lists them")
        meta = json.loads(await asyncio.to_thread(meta_file.read_text, encoding="utf-8"))
        if not isinstance(meta.get("pipeline"), dict):
            raise ApiError(404, f"session {session!r} was committed from Python (a Graph), not from a pipeline, "
                                f"so it has none to load; open a session started from the editor or `chimerapy run`")
        return json_response(meta["pipeline"])

    app.router.add_post("/api/validate", validate)
    app.router.add_get("/api/pipelines", list_saved)
    app.router.add_get("/api/pipelines/{name}", load_saved)
    app.router.add_put("/api/pipelines/{name}", save)
    app.router.add_get("/api/sessions/{session}/pipeline", session_pipeline)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only, replacing it whole."""
    temporary = path.with_suffix(".json.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    temporary.replace(path)
