"""``chimerapy collect LOGDIR_OR_SESSION``: collect sessions whose Manager crashed.

Workers keep every recording until a Manager confirms it, and a Worker that loses its Manager
keeps reconnecting to the same address (``cp-worker --reconnect-timeout``, 120 s by default;
a Worker started again later with the same name finds its recordings too). This command starts
a Manager at the crashed Manager's address (from the session's ``meta.json``, or ``--host`` and
``--port``) with the cluster's token, waits for the session's Workers, collects what they kept
into the session folder, merges ``meta.json`` and prints the report.

Given a logdir, it collects every session there that is not complete, newest first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..net import auth

__all__ = ["collect"]

log = logging.getLogger(__name__)


def _sessions(target: Path) -> list[Path]:
    """The session folders to collect: ``target`` itself, or the incomplete ones in a logdir."""
    if (target / "meta.json").is_file():
        return [target]
    found = []
    for folder in sorted((p for p in target.iterdir() if (p / "meta.json").is_file()), reverse=True):
        meta = _meta(folder)
        if meta.get("complete") is not True:
            found.append(folder)
    return found


def _meta(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@click.command("collect")
@click.argument("target", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default=None, help="Interface to listen on (default: the crashed Manager's).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: the crashed Manager's).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file holding the cluster token (default: $CHIMERAPY_TOKEN).")
@click.option("--wait", type=float, default=120.0, show_default=True,
              help="Seconds to wait for each session's Workers to reconnect.")
@click.option("-v", "--verbose", count=True, help="Log to the terminal (-v info, -vv debug).")
def collect(target: Path, host: str | None, port: int | None, token_file: Path | None, wait: float,
            verbose: int) -> None:
    """Collect the session folder TARGET (or every incomplete session in the logdir TARGET) whose
    Manager crashed, from the Workers that kept its recordings."""
    from ..manager.manager import Manager

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folders = _sessions(target.resolve())
    if not folders:
        click.echo(f"chimerapy collect: {target} holds no incomplete session", err=True)
        sys.exit(0)
    token = token_file.read_text(encoding="utf-8").strip() if token_file else os.environ.get(auth.TOKEN_ENV)
    if not token:
        click.echo("chimerapy collect: the Workers rejoin only a Manager holding the cluster's token: "
                   f"set {auth.TOKEN_ENV} or pass --token-file", err=True)
        sys.exit(2)
    address = _meta(folders[0]).get("manager") or {}
    host = host or address.get("host") or "127.0.0.1"
    port = port if port is not None else int(address.get("port") or 9000)
    manager = Manager(logdir=folders[0].parent, port=port, host=host, token=token, dashboard_api=False)
    try:
        if manager.port != port:
            click.echo(f"chimerapy collect: port {port} is taken; the Workers reconnect there only: "
                       f"free it, or pass --port", err=True)
            sys.exit(2)
        complete = True
        for folder in folders:
            click.echo(f"collecting {folder.name}: waiting up to {wait:.0f} s for its Workers at {host}:{port} ...")
            report = manager.collect_session(folder, timeout=wait)
            click.echo(str(report))
            complete = complete and report.complete
    finally:
        manager.shutdown()
    sys.exit(0 if complete else 1)
