"""Cluster authentication: one secret token per cluster, required on every connection.

The Manager creates a token (or takes the user's, ``$CHIMERAPY_TOKEN``, or the one it kept in its
logdir's private token file) and exports it as ``CHIMERAPY_TOKEN`` in its own process, so Workers
created or started from the same program join without extra arguments; other computers read it
from ``$CHIMERAPY_TOKEN`` or ``cp-worker --token-file`` (never from the command line).
Workers never send it: they prove they hold it (:mod:`chimerapy.net.handshake`). REST clients
present it as ``Authorization: Bearer <token>``. A browser signs in once, with a one-time code
(``/?code=...``, the URL the CLI prints) or the token typed into the login form (a POST), and
then holds a cookie derived from the token (it opens the dashboard, but does not reveal the
token). Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web

from ..errors import UnsafePathError

__all__ = ["COOKIE", "TOKEN_ENV", "LoginCodes", "bearer", "cookie_value", "login_handler", "matches", "middleware",
           "new_token", "presented_token", "read_token_file"]

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
    """The token a request carries in its ``Authorization: Bearer`` header."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return None


def cookie_value(token: str) -> str:
    """The dashboard cookie for ``token``: derived from it, so it opens the dashboard only."""
    return hmac.new(token.encode(), b"chimerapy-dashboard-cookie-v1", hashlib.sha256).hexdigest()


class LoginCodes:
    """One-time codes that sign a browser in (``/?code=...``): each works once, within ``lifetime`` s."""

    def __init__(self, *, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self._codes: dict[str, float] = {}

    def issue(self) -> str:
        """A fresh code."""
        now = time.monotonic()
        self._codes = {code: expiry for code, expiry in self._codes.items() if expiry > now}
        code = secrets.token_urlsafe(18)
        self._codes[code] = now + self.lifetime
        return code

    def redeem(self, code: str | None) -> bool:
        """Whether ``code`` is valid; it is spent either way."""
        expiry = self._codes.pop(code, None) if code else None
        return expiry is not None and expiry > time.monotonic()


def token_for(host: str, port: int, given: str | None = None) -> str | None:
    """The token a Worker should present to the Manager at ``host:port``."""
    return given or local_tokens.get(port) or os.environ.get(TOKEN_ENV)


def read_token_file(path: Path | str) -> str:
    """The token in ``path`` (a copy of a Manager's token file); refuses a file other users may read.

    Raises:
        UnsafePathError: the file is open to other users (names the chmod that fixes it).
        ValueError: the file is empty.
        OSError: the file cannot be read.
    """
    file = Path(path)
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise UnsafePathError(f"the token file {file} is open to other users (mode {mode:o}); run chmod 600 {file}",
                              path=str(file))
    token = file.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"the token file {file} is empty")
    return token


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(token: str | Callable[[], str | None], *, public: Iterable[str] = (), login_path: str | None = None,
               codes: LoginCodes | None = None):
    """An aiohttp middleware refusing requests without ``token`` (401, or a redirect to login).

    Args:
        token: the cluster token, or a function returning it (None: refuse everything).
        public: path prefixes served without a token (e.g. the login page's assets).
        login_path: where browsers asking for HTML pages are sent when they lack the token.
        codes: one-time login codes accepted once as ``?code=`` (the answer sets the cookie).
    """
    open_prefixes = tuple(public)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(open_prefixes):
            return await handler(request)
        presented = presented_token(request)
        expected = token() if callable(token) else token
        signed_in = by_code = False
        if expected is not None and presented is None:
            cookie = request.cookies.get(COOKIE)
            signed_in = cookie is not None and matches(cookie_value(expected), cookie)
            if not signed_in and codes is not None and "code" in request.query:
                signed_in = by_code = codes.redeem(request.query.get("code"))
        if not signed_in and (expected is None or not matches(expected, presented)):
            wants_page = "text/html" in request.headers.get("Accept", "") and not request.path.startswith(("/api", "/ws", "/files"))
            if login_path and wants_page:
                raise web.HTTPFound(login_path)
            reason = "no cluster token" if presented is None and "code" not in request.query \
                else "a wrong cluster token"
            raise web.HTTPUnauthorized(
                text=f'{{"error": "the request carried {reason}; pass Authorization: Bearer <token> '
                     f'(the token is in the Manager\'s token file), or sign in at /login"}}',
                content_type="application/json",
            )
        response = await handler(request)
        if by_code and expected is not None:
            set_cookie(response, expected)
        return response

    return check


def set_cookie(response: web.StreamResponse, token: str) -> None:
    """Sign the browser in: the derived cookie, HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="Strict", secure=True)


def login_handler(token: Callable[[], str | None]) -> Handler:
    """``POST /login`` with a form field ``token``: sets the cookie (303 to ``/`` for a plain form
    post, 200 JSON for a script), or answers 401."""

    async def login(request: web.Request) -> web.StreamResponse:
        expected = token()
        form = await request.post()
        presented = form.get("token")
        if expected is None or not isinstance(presented, str) or not matches(expected, presented.strip()):
            raise web.HTTPUnauthorized(text='{"error": "the Manager refused this token"}',
                                       content_type="application/json")
        if "text/html" in request.headers.get("Accept", ""):
            response = web.Response(status=303, headers={"Location": "/"})
        else:
            response = web.json_response({"ok": True})
        set_cookie(response, expected)
        return response

    return login
