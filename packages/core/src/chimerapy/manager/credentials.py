"""The Manager's credentials: its cluster token and its TLS identity, kept private in its logdir.

``<logdir>/.chimerapy/`` (0700) holds ``token`` (0600) and ``tls/manager.pem`` and ``manager.key``
(0600). A Manager restarted on the same logdir keeps both, so its Workers' tokens and pinned
fingerprints stay valid across a crash. The token file is what a Worker on another computer
needs (copied there, ``cp-worker --token-file``): the token is never printed nor logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..net import auth, tls
from ..private import private_folder, write_private

__all__ = ["Credentials", "load_credentials"]

log = logging.getLogger(__name__)

FOLDER = ".chimerapy"
TOKEN_FILE = "token"


@dataclass(frozen=True)
class Credentials:
    """The token, the file that holds it, and the TLS identity the Manager serves."""

    token: str
    token_file: Path
    identity: tls.Identity

    def __repr__(self) -> str:  # never the token
        return f"Credentials(token_file={str(self.token_file)!r}, fingerprint={self.identity.fingerprint!r})"


def load_credentials(logdir: Path, *, token: str | None = None, certificate: Path | str | None = None,
                     key: Path | str | None = None) -> Credentials:
    """The Manager's credentials for ``logdir``.

    Args:
        logdir: the Manager's log directory.
        token: the user's token; default ``$CHIMERAPY_TOKEN``, else the one kept in the logdir,
            else a new random one. Written to the token file (0600) either way.
        certificate, key: PEM files of a certificate to serve instead of the self-signed one.

    Raises:
        UnsafePathError: the private folder exists with another owner or wider permissions.
        ValueError: only one of ``certificate`` and ``key`` given, or a file without a certificate.
    """
    folder = private_folder(logdir / FOLDER)
    token_file = folder / TOKEN_FILE
    chosen = token or os.environ.get(auth.TOKEN_ENV)
    if not chosen and token_file.is_file():
        chosen = token_file.read_text(encoding="utf-8").strip() or None
    chosen = chosen or auth.new_token()
    write_private(token_file, (chosen + "\n").encode())
    if (certificate is None) != (key is None):
        raise ValueError("pass both tls_certificate= and tls_key= (PEM files), or neither for a self-signed one")
    if certificate is not None and key is not None:
        identity = tls.load_identity(certificate, key)
    else:
        identity = tls.load_or_create_identity(folder / "tls")
    return Credentials(chosen, token_file, identity)

