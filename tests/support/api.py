"""Clients of a Manager's HTTPS API for tests: bearer-token and signed-in browser-like sessions."""

from __future__ import annotations

import aiohttp
from chimerapy.net import auth, tls

__all__ = ["base_url", "bearer_client", "cookie_client"]


def base_url(manager) -> str:
    """The Manager's own origin (what its dashboard page sends as ``Origin``)."""
    return f"https://{manager.host}:{manager.port}"


def _connector(manager) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(ssl=tls.pinned(manager.fingerprint))


def bearer_client(manager, token: str | None = None) -> aiohttp.ClientSession:
    """A script's session: ``Authorization: Bearer`` (the cluster token unless ``token``)."""
    return aiohttp.ClientSession(base_url=base_url(manager), connector=_connector(manager),
                                 headers=auth.bearer(manager.token if token is None else token))


async def cookie_client(manager) -> aiohttp.ClientSession:
    """A browser's session: signed in by the one-time link the CLI prints, holding the cookie only."""
    http = aiohttp.ClientSession(base_url=base_url(manager), connector=_connector(manager),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))
    one_time = manager.dashboard_url().split(str(manager.port), 1)[1]
    async with http.get(one_time, allow_redirects=False) as response:
        assert response.status == 302 and auth.COOKIE in response.cookies
    return http
