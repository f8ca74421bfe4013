"""The Manager's REST API under /api, its live-events WebSocket, and the dashboard (in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .manager import Manager

__all__ = ["add_api"]


def add_api(app: web.Application, manager: Manager) -> None:
    """Register the API routes on ``app`` (before the server starts)."""

    async def state(request: web.Request) -> web.Response:
        return web.json_response(manager.status())

    app.router.add_get("/api/state", state)
