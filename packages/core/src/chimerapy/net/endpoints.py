"""Where data-plane sockets listen: ``ipc://`` in a private folder on one host, TCP across hosts.

A Worker makes one private folder (mode 0700, owned by its user) when it starts; its node
processes bind their same-host sockets there as ``ipc://`` endpoints, and the Worker's own
channel to its nodes listens there too. The folder's permission is the authentication on one
host: the kernel lets no other user connect to, or bind, a socket inside it (abstract-namespace
sockets, which have no permission, are never used). Same-host traffic therefore needs no
encryption; traffic to other hosts goes over TCP with CURVE (:mod:`chimerapy.net.keys`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

import zmq

from ..errors import ChimeraPyError

__all__ = ["PrivateDirectory", "bind", "check_private", "ipc_path", "is_ipc"]

#: Longest path a Unix socket may have (``sun_path`` holds 108 bytes with its NUL).
MAX_IPC_PATH = 107
#: Seconds a fixed TCP port may stay busy before binding to it fails.
REBIND_PATIENCE = 5.0


class PrivateDirectory:
    """A fresh folder only this user can enter, for ``ipc://`` endpoints; :meth:`close` removes it.

    It is made in ``$XDG_RUNTIME_DIR`` when that is usable, else in the temporary folder, else in
    ``/tmp`` when the temporary folder's path is too long for socket paths.
    """

    def __init__(self, prefix: str = "cp-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=_base()))  # mkdtemp: 0700, ours
        os.chmod(self.path, 0o700)
        check_private(self.path)

    def endpoint(self, name: str | None = None) -> str:
        """A new ``ipc://`` endpoint inside the folder (a random name unless ``name``)."""
        return f"ipc://{self.path / (name or uuid.uuid4().hex[:12])}"

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _base() -> str:
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK) \
                and len(candidate) + 40 < MAX_IPC_PATH:
            return candidate
    return "/tmp"


def check_private(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a real folder owned by this user that nobody else may enter."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise ChimeraPyError(
            f"{path} must be a folder owned by this user (uid {os.geteuid()}) with mode 0700 "
            f"(it has uid {info.st_uid}, mode {stat.filemode(info.st_mode)}); it holds the data plane's sockets"
        )


def is_ipc(address: str) -> bool:
    return address.startswith("ipc://")


def ipc_path(address: str) -> str:
    """The socket path of an ``ipc://`` address, checked: a file path (not abstract) short enough
    for a Unix socket, in a private folder."""
    path = address[len("ipc://"):]
    if not is_ipc(address) or path.startswith("@") or len(path) > MAX_IPC_PATH:
        raise ChimeraPyError(f"{address}: not an ipc:// file path of at most {MAX_IPC_PATH} bytes")
    check_private(os.path.dirname(path))
    return path


def bind(socket: zmq.Socket, endpoint: str) -> str:
    """Bind ``socket`` to ``endpoint`` and return the address consumers connect to.

    ``tcp://HOST:0`` picks a free port; a fixed TCP port (a restarted node takes its
    predecessor's) may stay busy a moment while consumers retry, so binding is retried for
    :data:`REBIND_PATIENCE` seconds. An ``ipc://`` path must lie in a private folder.
    """
    if is_ipc(endpoint):
        ipc_path(endpoint)
        socket.bind(endpoint)
        return endpoint
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    if port in ("", "0", "*"):
        return f"tcp://{host}:{socket.bind_to_random_port(f'tcp://{host}')}"
    deadline = time.monotonic() + REBIND_PATIENCE
    while True:
        try:
            socket.bind(endpoint)
            return endpoint
        except zmq.ZMQError as error:
            if error.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
