"""REST routes to act on running nodes: their registered methods (see :mod:`chimerapy.node.registered`).

    GET  /api/methods                       node -> its registered methods (name, doc, parameters)
    POST /api/nodes/{node}/methods/{method} call one while the pipeline runs; the body holds its
                                            parameters by name (``{}`` for none); answers
                                            ``{"result": ...}``, 422 with the node's message when
                                            the method is unknown, the parameters do not fit, or it
                                            raised; 409 when the pipeline is not running
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import NodeError
from ..node.registered import describe
from .jsonio import ApiError, json_response, read_json

if TYPE_CHECKING:
    from .served import ServedManager

__all__ = ["add_method_routes"]


def add_method_routes(app: web.Application, manager: ServedManager) -> None:
    """Register the registered-method routes on ``app``."""

    async def methods(request: web.Request) -> web.Response:
        graph = manager.graph
        found: dict[str, Any] = {}
        for node, name in (graph.unique_names() if graph is not None else {}).items():
            listed = describe(type(node))
            if listed:
                found[name] = listed  # by unique name, as the node's state and stats
        return json_response({"methods": found})

    async def call(request: web.Request) -> web.Response:
        node, method = request.match_info["node"], request.match_info["method"]
        params = await read_json(request, what="the method's parameters as a JSON object ({} for none)")
        if not isinstance(params, dict):
            raise ApiError(400, f"the body is a JSON {type(params).__name__}; send the parameters as an object "
                                f"(name -> value), {{}} for none")
        try:
            result = await asyncio.to_thread(manager.request_registered_method, node, method, params)
        except NodeError as error:
            raise ApiError(422, str(error), node=error.node, traceback=error.remote_traceback) from None
        return json_response({"node": node, "method": method, "result": result})

    app.router.add_get("/api/methods", methods)
    app.router.add_post("/api/nodes/{node}/methods/{method}", call)
