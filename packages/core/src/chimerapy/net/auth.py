"""Cluster authentication: one secret token per cluster, required on every connection.

The Manager creates a token (or takes the user's, or ``$CHIMERAPY_TOKEN``) and exports it as
``CHIMERAPY_TOKEN`` in its own process, so Workers created or started from the same program
join without extra arguments; other computers pass ``cp-worker --token ...`` (or set the
variable). Peers present it as ``Authorization: Bearer <token>``; a browser may pass
``?token=...`` once and then holds it in an HttpOnly cookie. Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

__all__ = ["COOKIE", "TOKEN_ENV", "bearer", "matches", "middleware", "new_token", "presented_token"]

TOKEN_ENV = "CHIMERAPY_TOKEN"
COOKIE = "chimerapy_token"

#: Tokens of the Managers living in this process, by port, so local Workers find them.
local_tokens: dict[int, str] = {}


def new_token() -> str:
    """A fresh random token (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def matches(expected: str, presented: str | None) -> bool:
    """Whether ``presented`` is the token, compared in constant time."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def bearer(token: str | None) -> dict[str, str]:
    """The request headers that present ``token``."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def presented_token(request: web.Request) -> str | None:
    """The token a request carries: Bearer header, ``?token=`` or the cookie."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.query.get("token") or request.cookies.get(COOKIE)


def token_for(host: str, port: int, given: str | None = None) -> str | None:
    """The token a Worker should present to the Manager at ``host:port``."""
    return given or local_tokens.get(port) or os.environ.get(TOKEN_ENV)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(token: str | Callable[[], str | None], *, public: Iterable[str] = (), login_path: str | None = None):
    """An aiohttp middleware refusing requests without ``token`` (401, or a redirect to login).

    Args:
        token: the cluster token, or a function returning it (None: refuse everything).
        public: path prefixes served without a token (e.g. the login page's assets).
        login_path: where browsers asking for HTML pages are sent when they lack the token.
    """
    open_prefixes = tuple(public)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(open_prefixes):
            return await handler(request)
        presented = presented_token(request)
        expected = token() if callable(token) else token
        if expected is None or not matches(expected, presented):
            wants_page = "text/html" in request.headers.get("Accept", "") and not request.path.startswith(("/api", "/ws", "/files"))
            if login_path and wants_page:
                raise web.HTTPFound(login_path)
            reason = "no cluster token" if presented is None else "a wrong cluster token"
            raise web.HTTPUnauthorized(
                text=f'{{"error": "the request carried {reason}; pass Authorization: Bearer <token> '
                     f'(cp-worker --token, or the URL the CLI printed)"}}',
                content_type="application/json",
            )
        response = await handler(request)
        if request.query.get("token") and isinstance(response, web.Response):
            response.set_cookie(COOKIE, presented, httponly=True, samesite="Strict")
        return response

    return check
