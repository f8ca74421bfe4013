"""Requests authenticated by the dashboard's cookie must come from the dashboard's own page.

A browser attaches the token cookie to every request for the Manager's host, whichever page
makes it, and ``SameSite`` does not tell two ports of ``localhost`` apart. So another page
(``http://localhost:8080``, a page on the lab's network) could otherwise drive the API or open
the events WebSocket with the user's cookie. The rule:

- a request that carries the token itself (``Authorization: Bearer ...`` or ``?token=...``)
  proves it knows the secret: served whatever its origin;
- a request authenticated by the cookie alone is served only when the browser says it comes
  from this server's own origin: an ``Origin`` header equal to ``scheme://host:port`` as the
  request addressed the server, and no ``Sec-Fetch-Site`` other than ``same-origin``/``none``;
- a cookie request that changes something (any method but GET/HEAD/OPTIONS) or opens a
  WebSocket must carry such an ``Origin`` (every current browser sends one there).

Refusals are 403 with a JSON ``{"error": ...}`` naming the origin and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from ..net.auth import COOKIE

__all__ = ["origin_middleware", "refusal"]

log = logging.getLogger(__name__)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME = frozenset({"same-origin", "none"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(request: web.Request) -> str | None:
    """Why ``request`` must be refused under the rule above, or ``None`` to serve it (pure)."""
    if request.headers.get(hdrs.AUTHORIZATION, "").startswith("Bearer ") or "token" in request.query:
        return None
    if COOKIE not in request.cookies:
        return None  # no ambient credential: the token check decides
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get(hdrs.ORIGIN)
    site = request.headers.get("Sec-Fetch-Site")
    if origin is not None and origin != own:
        return f"it comes from the page {origin!r}, not from the dashboard at {own}"
    if site is not None and site not in _SAME:
        return f"the browser marks it {site} (Sec-Fetch-Site), not same-origin with {own}"
    websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    if origin is None and (request.method not in _SAFE_METHODS or websocket):
        return f"a {'WebSocket' if websocket else request.method} request without an Origin header"
    return None


def origin_middleware(*, public: Iterable[str] = ()) -> Middleware:
    """An aiohttp middleware applying :func:`refusal` to every path but the ``public`` prefixes."""
    open_prefixes = tuple(public)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(open_prefixes):
            reason = refusal(request)
            if reason is not None:
                log.warning("refused %s %s authenticated by cookie: %s", request.method, request.path, reason)
                return web.json_response(
                    {"error": f"refused: {reason}; the dashboard cookie is honoured only on the dashboard's own "
                              f"page; other clients send Authorization: Bearer <token>"}, status=403)
        return await handler(request)

    return check

