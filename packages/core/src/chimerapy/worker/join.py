"""Opening a Worker's control socket to its Manager: TLS with the pinned certificate, then the token proof.

Order matters: the certificate is checked against the pin before anything is sent (aiohttp
compares the fingerprint during the TLS handshake), and the Manager proves it holds the token
(bound to the certificate this Worker saw) before this Worker sends its own proof or accepts a
single command. A server that fails either check gets neither the token, nor anything derived
from it that works elsewhere, and is never obeyed.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ..errors import AuthenticationError, ProtocolError
from ..net import control, handshake, tls
from ..net.control import Envelope

__all__ = ["open_manager_socket"]

log = logging.getLogger(__name__)


async def open_manager_socket(
    http: aiohttp.ClientSession,
    host: str,
    port: int,
    *,
    token: str | None,
    pin: str | None,
    timeout: float,
) -> tuple[aiohttp.ClientWebSocketResponse[bool], str]:
    """Connect to ``wss://host:port/ws/worker`` and run the token proof.

    Args:
        http: the session to connect with.
        host, port: the Manager's address.
        token: the cluster token (never sent).
        pin: the Manager certificate's fingerprint (``sha256:...``); None trusts the certificate
            only through the token proof bound to it (pin the one returned for reconnects).
        timeout: seconds for the connection and each step of the proof.

    Returns:
        The open, authenticated socket and the fingerprint of the Manager's certificate.

    Raises:
        AuthenticationError: no token, a certificate that fails the pin, or a server that
            could not prove it holds the token (nothing derived from the token was sent).
        aiohttp.ClientError, OSError, TimeoutError: the Manager could not be reached.
    """
    where = f"{host}:{port}"
    if not token:
        raise AuthenticationError(f"no cluster token to join the Manager at {where}: set CHIMERAPY_TOKEN or pass "
                                  "--token-file (the Manager's token file)")
    address = f"[{host}]" if ":" in host else host
    try:
        ws = await asyncio.wait_for(http.ws_connect(
            f"https://{address}:{port}/ws/worker", ssl=tls.pinned(pin) if pin else tls.client_context(),
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0), heartbeat=5.0, max_msg_size=control.MAX_MESSAGE_BYTES,
        ), timeout)
    except aiohttp.ServerFingerprintMismatch as mismatch:
        raise AuthenticationError(
            f"refused the server at {where}: its certificate is sha256:{mismatch.got.hex()}, not the pinned {pin}; "
            "it is not the Manager this Worker was told to trust, so nothing was sent to it (if the Manager "
            "really has a new certificate, pass its new --fingerprint)") from None
    except aiohttp.ClientSSLError as error:
        raise AuthenticationError(
            f"refused the server at {where}: its TLS handshake failed ({error}); a ChimeraPy Manager always "
            "speaks TLS, so this is not the Manager, and nothing was sent to it") from None
    seen = tls.peer_fingerprint(ws.get_extra_info("ssl_object"))
    try:
        if seen is None or (pin is not None and seen != tls.parse_fingerprint(pin)):
            raise AuthenticationError(f"refused the server at {where}: its certificate {seen} is not the pinned {pin}")
        await _prove(ws, where, token, seen, timeout)
    except BaseException:
        await ws.close()
        raise
    return ws, seen


async def _prove(ws: aiohttp.ClientWebSocketResponse[bool], where: str, token: str, fingerprint: str,
                 timeout: float) -> None:
    """The Worker's side of :mod:`chimerapy.net.handshake`."""
    worker_nonce = handshake.new_nonce()
    await ws.send_str(control.encode(Envelope("auth_hello", {"nonce": worker_nonce})))
    challenge = await _receive(ws, where, timeout)
    if challenge.type == "reply" and not challenge.ok:
        raise AuthenticationError(f"the Manager at {where} refused this Worker: {challenge.error}")
    if challenge.type != "auth_challenge":
        raise AuthenticationError(f"the server at {where} did not answer the token challenge (it sent "
                                  f"{challenge.type!r}): it is not a ChimeraPy Manager of this version")
    binding = {"fingerprint": fingerprint, "worker_nonce": worker_nonce,
               "manager_nonce": str(challenge.data["nonce"])}
    if not handshake.verify(token, challenge.data["proof"], role="manager", **binding):
        raise AuthenticationError(
            f"refused the server at {where} (certificate {fingerprint}): it could not prove it holds the cluster "
            "token, so it is not this cluster's Manager (or this Worker has the wrong token); nothing derived from "
            "the token was sent to it and no command will be taken from it")
    try:
        mine = handshake.proof(token, role="worker", **binding)
    except ValueError as error:  # a malformed nonce; verify() already refused it, kept for clarity
        raise AuthenticationError(f"the server at {where} sent a malformed challenge: {error}") from None
    await ws.send_str(control.encode(Envelope("auth_proof", {"proof": mine})))


async def _receive(ws: aiohttp.ClientWebSocketResponse[bool], where: str, timeout: float) -> Envelope:
    try:
        message = await ws.receive(timeout=timeout)
    except asyncio.TimeoutError:
        raise AuthenticationError(f"the server at {where} did not answer the token challenge within {timeout} s") \
            from None
    if message.type != aiohttp.WSMsgType.TEXT:
        raise AuthenticationError(f"the server at {where} closed the connection during the token proof")
    try:
        return control.decode(message.data)
    except ProtocolError as error:
        raise AuthenticationError(f"the server at {where} answered the token challenge with junk: {error}") from None
