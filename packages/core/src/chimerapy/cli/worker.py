"""``cp-worker``: join a Manager from this computer and host its nodes until it shuts down."""

from __future__ import annotations

import logging
import signal
import sys

import click

from ..errors import InvalidNameError
from ..names import check_name
from ..worker.worker import Worker


def _checked_name(value: str) -> str:
    """``--name`` checked against the name rule (a usage error naming the bad character if not)."""
    try:
        return check_name("Worker", value)
    except InvalidNameError as error:
        raise click.BadParameter(str(error)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--ip", "host", required=True, help="The Manager's IP address or host name.")
@click.option("--port", required=True, type=int, help="The Manager's port.")
@click.option("--name", required=True, callback=lambda ctx, param, value: _checked_name(value),
              help="This Worker's name (unique in the cluster; letters, digits, '-', '_', '.').")
@click.option("--token", envvar="CHIMERAPY_TOKEN", default=None,
              help="The cluster's secret token (printed by the Manager; or set CHIMERAPY_TOKEN).")
@click.option("--id", "worker_id", default=None, help="A fixed Worker id (default: random).")
@click.option("--worker-port", default=0, show_default=True, type=int, help="Port of this Worker's HTTP server.")
@click.option("--keep-temp", is_flag=True, help="Keep temporary recordings after they were collected.")
@click.option("--reconnect-timeout", default=120.0, show_default=True, type=float,
              help="After losing the Manager, seconds to keep trying to reconnect (recordings are kept).")
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait for the Manager.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(host: str, port: int, name: str, token: str | None, worker_id: str | None, worker_port: int,
         keep_temp: bool, reconnect_timeout: float, timeout: float, verbose: int) -> None:
    """Join the Manager at IP:PORT as Worker NAME and run its nodes until it shuts down."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = Worker(name, port=worker_port, delete_temp=not keep_temp, id=worker_id)
    worker.reconnect_timeout = reconnect_timeout

    def on_signal(signum: int, frame: object) -> None:
        worker.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not worker.connect(host, port, timeout=timeout, token=token):
        worker.shutdown()
        click.echo(f"cp-worker: could not connect to the Manager at {host}:{port} within {timeout} s", err=True)
        sys.exit(1)
    click.echo(f"cp-worker: {name} connected to {host}:{port}", err=True)
    worker.wait_until_shutdown()
    worker.shutdown()


if __name__ == "__main__":
    main()
