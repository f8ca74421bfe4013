"""Collecting a session's recordings from each Worker into the Manager's session folder.

For each Worker: ask for the session's file list (paths, sizes, SHA-256), download every file
over HTTPS into ``<session>/<worker>/<node>/...``, hashing as it streams; a file whose checksum
does not match is downloaded again (up to ``attempts`` times). Only when every file of that
Worker arrived intact is the Worker told that it may delete its copy.

The Worker's file server is trusted only through what the Worker said over its authenticated
control socket: the fingerprint of its certificate (pinned) and a key for its files (presented
instead of the cluster token, which never leaves the Manager). Folders are created 0700 and
files 0600. A file that cannot be stored (a full disk under the logdir) leaves no partial file behind, stays on the Worker, and is
reported (kind ``disk_full``) so that collecting again once there is space brings it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ..net import auth, tls
from ..private import FILE_MODE, FOLDER_MODE
from .server import WorkerLink

__all__ = ["ProgressCallback", "WorkerCollection", "collect_from"]

log = logging.getLogger(__name__)

#: Called as ``progress(worker, path, bytes_done, bytes_total)`` while files arrive.
ProgressCallback = Callable[[str, str, int, int], None]


@dataclass
class WorkerCollection:
    """What was collected from one Worker."""

    worker: str
    files: int = 0
    bytes: int = 0
    retries: int = 0
    missing: list[str] = field(default_factory=list)
    error: str | None = None
    clock: dict[str, Any] = field(default_factory=dict)
    #: Every path the Worker listed this time (to merge with earlier attempts).
    listed: list[str] = field(default_factory=list)
    #: Faults found on the way: torn rows cut off, partial files left out, files that could not
    #: be stored (see :mod:`chimerapy.manager.report`).
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.error is None and not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "retries": self.retries,
                "missing": self.missing, "error": self.error, "complete": self.complete, "listed": self.listed}


async def collect_from(
    link: WorkerLink,
    session: str,
    destination: Path,
    http: aiohttp.ClientSession,
    *,
    progress: ProgressCallback | None = None,
    attempts: int = 3,
    folder_mode: int = FOLDER_MODE,
    file_mode: int = FILE_MODE,
) -> WorkerCollection:
    """Bring ``session``'s files from the Worker behind ``link`` into ``destination``
    (folders created ``folder_mode``, files ``file_mode``: private by default)."""
    result = WorkerCollection(link.name)
    try:
        reply = await link.request("list_files", {"session": session}, timeout=600)
    except (TimeoutError, ConnectionError) as error:
        result.error = f"could not list files: {error}"
        return result
    if not reply.ok:
        result.error = reply.error or "list_files failed"
        return result
    result.clock = reply.data.get("clock", {})
    result.problems = list(reply.data.get("problems", []))
    listing = reply.data.get("files", [])
    result.listed = [str(entry["path"]) for entry in listing]
    server = reply.data.get("http", {})
    if not server.get("fingerprint") or not server.get("key"):
        result.error = "the Worker offered no pinned file channel (a Worker of an older version?)"
        return result
    host = f"[{server['host']}]" if ":" in str(server["host"]) else server["host"]
    base = f"https://{host}:{server['port']}/files/{session}/"
    channel = {"ssl": tls.pinned(str(server["fingerprint"])), "headers": auth.bearer(str(server["key"]))}
    total = sum(int(entry["size"]) for entry in listing)
    done = 0
    for entry in listing:
        relative = str(entry["path"])
        target = (destination / relative).resolve()
        if not target.is_relative_to(destination.resolve()):
            result.missing.append(relative)
            log.error("Worker %s listed a path outside its session: %r", link.name, relative)
            continue
        full = None
        for attempt in range(1, attempts + 1):
            try:
                digest = await _download(http, base + relative, target, channel, (folder_mode, file_mode))
            except OSError as error:
                if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                    digest = f"error: {error}"
                else:
                    full = f"no space left under the logdir for {relative} ({error.strerror})"
                    break
            except (aiohttp.ClientError, TimeoutError) as error:
                digest = f"error: {error}"
            if digest == entry["sha256"]:
                break
            result.retries += 1
            log.warning("collect: %s from Worker %s arrived damaged (attempt %d of %d: %s); retrying",
                        relative, link.name, attempt, attempts, digest[:40])
        else:
            full = f"{relative} could not be collected intact in {attempts} attempts"
        if full is not None:
            result.missing.append(relative)
            target.unlink(missing_ok=True)
            kind = "disk_full" if full.startswith("no space") else "missing_file"
            result.problems.append({"kind": kind, "path": relative, "node": relative.split("/", 1)[0],
                                    "message": full + "; it stays on the Worker: free space and collect again"})
            log.error("collect from Worker %s: %s", link.name, full)
            continue
        result.files += 1
        result.bytes += int(entry["size"])
        done += int(entry["size"])
        if progress is not None:
            progress(link.name, relative, done, total)
    if result.complete:
        try:
            await link.request("delete_files", {"session": session}, timeout=60)
        except (TimeoutError, ConnectionError) as error:
            log.warning("collect: could not confirm to Worker %s: %s", link.name, error)
    return result


async def _download(http: aiohttp.ClientSession, url: str, target: Path, channel: dict[str, Any],
                    modes: tuple[int, int]) -> str:
    """Stream ``url`` into ``target`` (folders and file created with ``modes``) and return the
    SHA-256 of what arrived."""
    folder_mode, file_mode = modes
    _private_parents(target.parent, folder_mode)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=60), **channel) as response:
            response.raise_for_status()
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, file_mode)
            os.fchmod(descriptor, file_mode)
            with os.fdopen(descriptor, "wb") as file:
                async for block in response.content.iter_chunked(1 << 20):
                    digest.update(block)
                    file.write(block)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)  # never leave a .part in the archive (a full disk, a cut)
    return digest.hexdigest()


def _private_parents(folder: Path, mode: int) -> None:
    """Create ``folder`` and its missing parents with ``mode`` (whatever the umask)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=mode, exist_ok=True)
        os.chmod(created, mode)
