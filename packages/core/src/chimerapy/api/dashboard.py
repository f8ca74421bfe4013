"""The web dashboard: plain static files from ``chimerapy/api/static/``, served by the Manager.

    GET /          the dashboard; ``/?code=...`` (a one-time code) signs in and redirects to ``/``
    GET /login     a form asking for the cluster token (no token needed); it POSTs to /login
    GET /assets/*  its script and stylesheet (no token needed; they hold no data)

The pages load nothing from elsewhere: their Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["DASHBOARD", "PUBLIC_PATHS", "add_dashboard"]

#: The folder of the dashboard's static files (part of the wheel).
DASHBOARD = Path(__file__).with_name("static")
#: Path prefixes that hold no data: the login page and the static assets.
PUBLIC_PATHS = ("/login", "/assets/")

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(name: str) -> web.Response:
    return web.Response(body=(DASHBOARD / name).read_bytes(), content_type="text/html", charset="utf-8",
                        headers=_HEADERS)


def add_dashboard(app: web.Application) -> None:
    """Serve the dashboard's pages and assets on ``app``."""

    async def index(request: web.Request) -> web.Response:
        if "code" in request.query:  # accepted by the auth middleware, which sets the cookie
            return web.Response(status=302, headers={**_HEADERS, "Location": "/"})
        return _page("index.html")

    async def login(request: web.Request) -> web.Response:
        return _page("login.html")

    app.router.add_get("/", index)
    app.router.add_get("/login", login)
    app.router.add_static("/assets/", DASHBOARD / "assets")
