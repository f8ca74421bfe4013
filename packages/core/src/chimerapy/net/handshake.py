"""The token proof: Manager and Worker show each other they hold the cluster token without sending it.

Pure functions, no I/O. Over the TLS WebSocket, before anything else::

    Worker  -> Manager   auth_hello      {"nonce": Nw}
    Manager -> Worker    auth_challenge  {"nonce": Nm, "proof": HMAC(token, "manager" | F | Nw | Nm)}
    Worker  -> Manager   auth_proof      {"proof": HMAC(token, "worker" | F | Nw | Nm)}

``F`` is the fingerprint of the Manager's TLS certificate on this connection (the Manager knows
its own; the Worker reads the one it was shown), so a proof made for one server is worthless on
another: a server in the middle with its own certificate can neither answer the Worker nor
relay the Worker's proof. The Manager proves first, so a Worker gives nothing derived from the
token to a server that does not hold it. Both nonces are fresh, so no proof can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["NONCE_BYTES", "new_nonce", "proof", "verify"]

NONCE_BYTES = 32
_LABEL = b"chimerapy-control-handshake-v1"
_ROLES = ("manager", "worker")


def new_nonce() -> str:
    """A fresh random nonce (256 bits, hex)."""
    return secrets.token_hex(NONCE_BYTES)


def proof(token: str, *, role: str, fingerprint: str, worker_nonce: str, manager_nonce: str) -> str:
    """The proof that ``role`` (``"manager"`` or ``"worker"``) holds ``token`` on this connection (hex)."""
    if role not in _ROLES:
        raise ValueError(f"role must be one of {_ROLES}, got {role!r}")
    for label, nonce in (("worker_nonce", worker_nonce), ("manager_nonce", manager_nonce)):
        if not isinstance(nonce, str) or len(nonce) != 2 * NONCE_BYTES:
            raise ValueError(f"{label} must be {2 * NONCE_BYTES} hex digits")
    message = b"\0".join(part.encode() for part in (role, fingerprint, worker_nonce, manager_nonce))
    return hmac.new(token.encode(), _LABEL + b"\0" + message, hashlib.sha256).hexdigest()


def verify(token: str, presented: object, *, role: str, fingerprint: str, worker_nonce: str,
           manager_nonce: str) -> bool:
    """Whether ``presented`` is ``role``'s proof for this connection (constant-time; False for junk)."""
    if not isinstance(presented, str):
        return False
    try:
        expected = proof(token, role=role, fingerprint=fingerprint, worker_nonce=worker_nonce,
                         manager_nonce=manager_nonce)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))
