"""The Manager's REST API under ``/api``, its live-events WebSocket, and the dashboard's routes.

Every route needs the cluster token (see :mod:`chimerapy.net.auth`); bodies and answers are JSON,
and every refusal is a 4xx ``{"error": ...}`` that changes nothing (see :mod:`chimerapy.api.jsonio`)::

    GET  /api/state         Manager.status() with the graph, clock offsets and a previews summary
    GET  /api/workers       the connected Workers: host, pid, versions, clock offset
    GET  /api/nodes         per node: Worker, state, stats, latest preview (thumbnails, values)
    GET  /api/registry      the nodes installed packs declare
    POST /api/pipeline      commit a pipeline (the JSON of a pipeline file) after every check of
                            ``chimerapy validate`` (:mod:`chimerapy.pipeline_checks`); 409 while running
    POST /api/preview       run the committed graph with nothing saved (every save_* call counted,
                            ``preview_saves`` in each node's stats); after a stop, a new session
    POST /api/record        begin recording: during a preview in the running nodes (no restart);
                            else as POST /api/start
    POST /api/start         start the committed graph, recording; during a preview as POST /api/record;
                            after a stop, a further recording of it in a new session folder
    POST /api/stop          stop, then collect; answers the session report (collected, complete, faults)
    POST /api/collect       collect again (e.g. once a lost Worker is back); the merged report
    POST /api/shutdown      answers, then shuts the Manager and its Workers down
    GET  /api/events        WebSocket: a "snapshot" (the state, full previews), then every event
    GET  /api/sessions ...  the archive (see :mod:`chimerapy.api.sessions`)
    POST /api/validate, GET/PUT /api/pipelines/...  the pipeline editor's (see :mod:`chimerapy.api.editor`)
    GET /api/methods, POST /api/nodes/{node}/methods/{method}  registered methods (:mod:`.methods`)
    GET /api/sessions/{id}/streams, /report, PUT .../notes  the Review of a session (:mod:`.review`)
    GET  /, /login, /assets/...  the dashboard (see :mod:`chimerapy.api.dashboard`)

The handlers run on the Manager's event loop, which the Manager's blocking calls (start, stop,
collect, commit, shutdown) also need: those run in a thread via :func:`asyncio.to_thread`, one at
a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .. import registry
from ..pipeline_checks import check_pipeline
from .dashboard import PUBLIC_PATHS, add_dashboard
from .editor import add_editor_routes
from .jsonio import ApiError, dumps, error_middleware, json_response, read_json
from .methods import add_method_routes
from .origin import origin_middleware
from .review import add_review_routes
from .served import ServedManager
from .sessions import add_session_routes

if TYPE_CHECKING:
    from ..manager.report import SessionReport

__all__ = ["add_api", "cluster_state"]

#: Log lines a new events client gets in its snapshot.
LOG_TAIL = 200


def cluster_state(manager: ServedManager, *, thumbnails: bool = False) -> dict[str, Any]:
    """``manager.status()`` with each node's Worker, the graph, clock offsets and the previews.

    Args:
        thumbnails: include the previews' JPEG data (else only their sizes and values).
    """
    state = manager.status()
    meta = manager.session.meta if manager.session is not None else {}
    placement = {node: worker for worker, nodes in meta.get("mapping", {}).items() for node in nodes}
    for name, node in state["nodes"].items():
        node["worker"] = placement.get(name)
        node["stats"] = manager.final_stats.get(name) or node["stats"]
    state["graph"] = manager.graph.to_dict() if manager.graph is not None else {"nodes": [], "edges": []}
    live = {name: info["clock"].get("offset") for name, info in state["workers"].items() if "clock" in info}
    collected = {worker: clock.get("offset") for worker, clock in meta.get("clock_offsets", {}).items()}
    state["clock_offsets"] = {**collected, **live}  # live estimates while Workers are connected
    state["previews"] = {node: {record: value if thumbnails else {k: v for k, v in value.items() if k != "jpeg"}
                                for record, value in records.items()}
                         for node, records in list(manager.previews.items()) if node in state["nodes"]}
    return state


def add_api(app: web.Application, manager: ServedManager) -> None:
    """Register the API, the events socket and the dashboard on ``app`` (before it starts)."""
    app.middlewares.append(error_middleware)
    app.middlewares.append(origin_middleware(public=PUBLIC_PATHS))
    lifecycle = asyncio.Lock()  # one blocking Manager call at a time
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def blocking(call: Any, *args: Any) -> Any:
        async with lifecycle:
            return await asyncio.to_thread(call, *args)

    def summary() -> dict[str, Any]:
        return {"state": manager.state, "session": manager.session.id if manager.session else None}

    async def get_state(request: web.Request) -> web.Response:
        return json_response(cluster_state(manager))

    async def get_workers(request: web.Request) -> web.Response:
        offsets = cluster_state(manager)["clock_offsets"]
        workers = [{"name": name, "host": info.get("host"), "hostname": info.get("hostname"),
                    "pid": info.get("pid"), "versions": info.get("versions", {}),
                    "clock_offset": offsets.get(name)}
                   for name, info in sorted(manager.workers.items())]
        return json_response({"workers": workers})

    async def get_nodes(request: web.Request) -> web.Response:
        state = cluster_state(manager, thumbnails=True)
        nodes = {name: {**node, "preview": state["previews"].get(name, {})} for name, node in state["nodes"].items()}
        return json_response({"nodes": nodes, "errors": state["errors"]})

    async def get_registry(request: web.Request) -> web.Response:
        infos = await asyncio.to_thread(registry.available)
        return json_response({"nodes": [{**dataclasses.asdict(info), "broken": info.broken} for info in infos]})

    async def post_pipeline(request: web.Request) -> web.Response:
        data = await read_json(request, what="a pipeline (the contents of a pipeline file)")
        if not isinstance(data, dict):
            raise ApiError(400, f"the body is a JSON {type(data).__name__}; send a pipeline as a JSON object "
                                f"with nodes, edges, workers and mapping")
        if manager.state in ("running", "stepping", "preview"):
            raise ApiError(409, f"the cluster is {manager.state}; POST /api/stop first, then commit the pipeline")
        checked = await asyncio.to_thread(check_pipeline, data, source="the posted pipeline",
                                          connected=sorted(manager.workers))
        await blocking(manager.commit_pipeline, checked.pipeline)
        return json_response({**summary(), "nodes": manager.graph.names() if manager.graph else []})

    async def post_start(request: web.Request) -> web.Response:
        await blocking(manager.start)
        return json_response(summary())

    async def post_preview(request: web.Request) -> web.Response:
        await blocking(manager.preview)
        return json_response(summary())

    async def post_record(request: web.Request) -> web.Response:
        await blocking(manager.record)
        return json_response(summary())

    async def post_stop(request: web.Request) -> web.Response:
        def stop_and_collect() -> tuple[bool, SessionReport]:
            with manager.lifecycle:  # one step: a `chimerapy run` waiting on it sees the collection done
                stopped = manager.stop(collect=False)
                return bool(stopped), manager.collect()

        stopped, report = await blocking(stop_and_collect)
        return json_response({**summary(), "stopped": stopped, **_report_fields(report)})

    async def post_collect(request: web.Request) -> web.Response:
        report = await blocking(manager.collect)
        return json_response({**summary(), **_report_fields(report)})

    async def post_shutdown(request: web.Request) -> web.StreamResponse:
        response = json_response({**summary(), "shutting_down": True})
        await response.prepare(request)
        await response.write_eof()
        # Manager.shutdown() stops the loop this handler runs on: it gets a thread of its own
        threading.Thread(target=manager.shutdown, name="chimerapy-api-shutdown").start()
        return response

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        sockets.add(ws)
        queue = manager.events.subscribe()
        snapshot = {"type": "snapshot", **cluster_state(manager, thumbnails=True),
                    "log_tail": _log_tail(manager.session.path / "chimerapy.log") if manager.session else []}
        forward = asyncio.create_task(_forward(queue, ws, snapshot))
        try:
            async for message in ws:  # the client sends nothing; this ends when it leaves
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            forward.cancel()
            manager.events.unsubscribe(queue)
        return ws

    async def close_sockets(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=1001, message=b"the Manager is shutting down")

    app.on_shutdown.append(close_sockets)
    app.router.add_get("/api/state", get_state)
    app.router.add_get("/api/workers", get_workers)
    app.router.add_get("/api/nodes", get_nodes)
    app.router.add_get("/api/registry", get_registry)
    app.router.add_post("/api/pipeline", post_pipeline)
    app.router.add_post("/api/start", post_start)
    app.router.add_post("/api/preview", post_preview)
    app.router.add_post("/api/record", post_record)
    app.router.add_post("/api/stop", post_stop)
    app.router.add_post("/api/collect", post_collect)
    app.router.add_post("/api/shutdown", post_shutdown)
    app.router.add_get("/api/events", events)
    add_session_routes(app, manager.root_logdir)
    add_editor_routes(app, manager)
    add_method_routes(app, manager)
    add_review_routes(app, manager)
    add_dashboard(app)


def _report_fields(report: SessionReport) -> dict[str, Any]:
    """A session report as the stop and collect answers carry it."""
    data = report.as_dict()
    return {"collected": data["collected"], "complete": data["complete"], "faults": data["faults"]}


def _not_connected(worker: str, connected: list[str]) -> str:
    return (f"Worker {worker!r} is not connected (connected: {connected or 'none'}); "
            f"start it (cp-worker ... --name {worker}) or map its nodes to another Worker")


def _log_tail(path: Path, lines: int = LOG_TAIL) -> list[str]:
    """The last ``lines`` lines of the log file at ``path`` (none if it is missing)."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, 2) - lines * 400))
            return file.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []


async def _forward(queue: asyncio.Queue, ws: web.WebSocketResponse, first: dict[str, Any]) -> None:
    """Send ``first``, then each event from ``queue``, to ``ws`` until the socket closes."""
    event = first
    while not ws.closed:
        try:
            await ws.send_json(event, dumps=dumps)
        except ConnectionError:
            return
        event = await queue.get()
