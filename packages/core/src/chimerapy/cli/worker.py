"""``cp-worker``: join a Manager from this computer and host its nodes until it shuts down.

The safe way to join (the command the Manager prints)::

    cp-worker --ip 10.0.0.5 --port 9000 --name lab2 --fingerprint sha256:... --token-file ~/cluster-token

The token comes from ``$CHIMERAPY_TOKEN`` or ``--token-file`` (a copy of the Manager's token
file, mode 0600); ``--token`` still works but puts the secret where other users of this computer
can read it (``ps``, ``/proc/PID/cmdline``), so it warns.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from ..errors import InvalidNameError, UnsafePathError
from ..names import check_name
from ..net import auth, tls
from ..worker.worker import Worker

log = logging.getLogger("chimerapy.cli.worker")


def _checked_name(value: str) -> str:
    """``--name`` checked against the name rule (a usage error naming the bad character if not)."""
    try:
        return check_name("Worker", value)
    except InvalidNameError as error:
        raise click.BadParameter(str(error)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--ip", "host", default=None, help="The Manager's IP address or host name.")
@click.option("--port", default=None, type=int, help="The Manager's port.")
@click.option("--name", required=True, callback=lambda ctx, param, value: _checked_name(value),
              help="This Worker's name (unique in the cluster; letters, digits, '-', '_', '.').")
@click.option("--fingerprint", envvar="CHIMERAPY_FINGERPRINT", default=None,
              help="The Manager's certificate fingerprint (sha256:..., printed by the Manager): only that Manager "
                   "is trusted.")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A file holding the cluster token (a copy of the Manager's token file, mode 0600).")
@click.option("--token", "token_argument", default=None,
              help="The cluster token in clear (deprecated: other users can read command lines; use "
                   "CHIMERAPY_TOKEN or --token-file).")
@click.option("--discover", is_flag=True,
              help="Find the Manager on the local network (zeroconf) instead of --ip/--port; it is still trusted "
                   "only through --fingerprint and the token proof.")
@click.option("--id", "worker_id", default=None, help="A fixed Worker id (default: random).")
@click.option("--worker-port", default=0, show_default=True, type=int, help="Port of this Worker's HTTP server.")
@click.option("--keep-temp", is_flag=True, help="Keep temporary recordings after they were collected.")
@click.option("--reconnect-timeout", default=120.0, show_default=True, type=float,
              help="After losing the Manager, seconds to keep trying to reconnect (recordings are kept).")
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait for the Manager.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(host: str | None, port: int | None, name: str, fingerprint: str | None, token_file: str | None,
         token_argument: str | None, discover: bool, worker_id: str | None, worker_port: int, keep_temp: bool,
         reconnect_timeout: float, timeout: float, verbose: int) -> None:
    """Join the Manager at IP:PORT as Worker NAME and run its nodes until it shuts down."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = _token(token_file, token_argument)
    if fingerprint is not None:
        try:
            fingerprint = tls.parse_fingerprint(fingerprint)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--fingerprint") from None
    else:
        log.warning("no --fingerprint: the Manager is trusted only through the token proof at the first join "
                    "(pass the fingerprint the Manager printed to pin it)")
    if discover:
        host, port = _discover(fingerprint, timeout)
    elif host is None or port is None:
        raise click.UsageError("pass --ip and --port (or --discover)")
    try:
        worker = Worker(name, port=worker_port, delete_temp=not keep_temp, id=worker_id)
    except UnsafePathError as error:
        click.echo(f"cp-worker: {error}", err=True)
        sys.exit(1)
    worker.reconnect_timeout = reconnect_timeout

    def on_signal(signum: int, frame: object) -> None:
        worker.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not worker.connect(host, port, timeout=timeout, token=token, fingerprint=fingerprint):
        worker.shutdown()
        click.echo(f"cp-worker: could not connect to the Manager at {host}:{port} within {timeout} s", err=True)
        sys.exit(1)
    click.echo(f"cp-worker: {name} connected to {host}:{port}", err=True)
    worker.wait_until_shutdown()
    worker.shutdown()


def _token(token_file: str | None, token_argument: str | None) -> str | None:
    """The token from --token-file, $CHIMERAPY_TOKEN or (with a warning) --token."""
    if token_file is not None:
        try:
            return auth.read_token_file(token_file)
        except (UnsafePathError, ValueError, OSError) as error:
            raise click.BadParameter(str(error), param_hint="--token-file") from None
    if token_argument is not None:
        log.warning("--token puts the cluster token on the command line, where other users of this computer can "
                    "read it; use CHIMERAPY_TOKEN or --token-file instead")
        return token_argument
    return os.environ.get(auth.TOKEN_ENV) or None


def _discover(fingerprint: str | None, timeout: float) -> tuple[str, int]:
    """The address of a Manager announced on the local network (with ``fingerprint``, if given)."""
    from ..net.discovery import DiscoveryUnavailable, find_manager

    try:
        found = find_manager(fingerprint=fingerprint, timeout=timeout)
    except DiscoveryUnavailable as error:
        raise click.UsageError(str(error)) from None
    if found is None:
        click.echo(f"cp-worker: no Manager{' with that fingerprint' if fingerprint else ''} announced itself on the "
                   f"local network within {timeout} s", err=True)
        sys.exit(1)
    click.echo(f"cp-worker: found the Manager at {found.host}:{found.port}", err=True)
    return found.host, found.port


if __name__ == "__main__":
    main()
