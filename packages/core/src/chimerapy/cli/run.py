"""``chimerapy run pipeline.json``: run a pipeline end to end and leave an archive.

Starts a Manager and the pipeline's local Workers, prints the ``cp-worker`` command for remote
ones and waits for them, commits, runs for the pipeline's run time or until Ctrl-C, stops,
collects with a progress bar, and prints where the archive is. Ctrl-C at any point still
stops the nodes and collects what they recorded; a third Ctrl-C abandons the collection. A
stop from the dashboard or ``POST /api/stop`` ends the run the same way: the API stops and
collects, and the command reports that collection and exits normally.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..manager.manager import Manager
from ..manager.report import SessionReport
from ..pipeline_checks import CheckedPipeline
from ..worker.worker import Worker
from .status import CollectProgress, StatusView, node_rows

if TYPE_CHECKING:
    from typing_extensions import Self

if TYPE_CHECKING:
    from typing_extensions import Self


class Interrupts:
    """Counts Ctrl-C presses: the first asks to stop, the third aborts."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.count = 0

    def __enter__(self) -> Self:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._previous_term = signal.signal(signal.SIGTERM, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)
        signal.signal(signal.SIGTERM, self._previous_term)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.count += 1
        self.stop.set()
        if self.count == 1:
            click.echo("\nstopping: the nodes drain and their recordings are collected "
                       "(Ctrl-C twice more to abandon the collection)", err=True)
        elif self.count >= 3:
            raise KeyboardInterrupt


def run_pipeline(checked: CheckedPipeline, *, logdir: Path | None, runtime: float | None, host: str | None,
                 port: int | None) -> int:
    """Run a checked pipeline; return the exit code (0: a complete archive and no node errors)."""
    pipeline = checked.pipeline
    manager = Manager(logdir=logdir or Path(pipeline.logdir), port=pipeline.manager.port if port is None else port,
                      host=host or pipeline.manager.host)
    workers: list[Worker] = []
    with Interrupts() as interrupts:
        try:
            click.echo(f"dashboard (this link signs in once): {manager.dashboard_url()}")
            for name in pipeline.local_workers:
                worker = Worker(name, port=0)
                workers.append(worker)
                if not worker.connect(manager.host, manager.port):
                    raise click.ClickException(f"local Worker {name} could not connect")
            if pipeline.remote_workers and not _wait_for_remote(manager, pipeline.remote_workers, interrupts):
                return 1
            manager.commit_pipeline(checked)
            placement = {node: worker for worker, nodes in checked.mapping.items() for node in nodes}
            duration = runtime if runtime is not None else pipeline.runtime
            manager.start()
            _watch(manager, placement, duration, interrupts)
            report = _stop_and_collect(manager)
            _summary(manager, report)
            return 0 if report.complete and not manager.errors else 1
        except KeyboardInterrupt:
            click.echo("aborted: recordings not yet collected stay in the Workers' temporary folders", err=True)
            return 130
        finally:
            manager.shutdown()
            for worker in workers:
                worker.shutdown()


def _stop_and_collect(manager: Manager) -> SessionReport:
    """Stop and collect, unless the dashboard or the REST API already did: then report theirs."""
    with manager.lifecycle:  # the API holds it while it stops and collects
        if manager.state == "stopped" and manager.last_report is not None:
            click.echo("stopped from the dashboard or the REST API; its collection:")
            return manager.last_report
        click.echo("stopping and collecting ...")
        manager.stop(collect=False)
        with CollectProgress() as progress:
            return manager.collect(progress=progress)


def _wait_for_remote(manager: Manager, names: list[str], interrupts: Interrupts) -> bool:
    from .join import print_join_instructions

    click.echo("waiting for the remote Workers; on each of their computers run the command below")
    print_join_instructions(manager, names, dashboard=False)
    while not interrupts.stop.is_set():
        if manager.wait_for_workers(names, timeout=1.0):
            return True
    return False


def _watch(manager: Manager, placement: dict[str, str], duration: float | None, interrupts: Interrupts) -> None:
    """Show the node table until the run time is over, Ctrl-C, or a stop from elsewhere."""
    started = time.monotonic()
    session = manager.session.id if manager.session is not None else "?"
    with StatusView() as view:
        while not interrupts.stop.wait(1.0) and manager.state == "running":
            elapsed = time.monotonic() - started
            limit = f"/{duration:.0f}" if duration else ""
            view.update(f"session {session}  {elapsed:.0f}{limit} s  (Ctrl-C to stop)",
                        node_rows(manager.status(), placement))
            if duration is not None and elapsed >= duration:
                return


def _summary(manager: Manager, report: SessionReport) -> None:
    for worker, item in report.items():
        state = "complete" if item["complete"] else f"INCOMPLETE ({item['error'] or ''} missing {item['missing']})"
        click.echo(f"  {worker}: {item['files']} files, {item['bytes'] / 1e6:.1f} MB, {state}")
    for fault in report.faults:
        click.echo(f"  {fault.kind} ({'data lost' if fault.data_lost else 'nothing lost'}): {fault.message}")
    for error in manager.errors:
        click.echo(f"  error in {error.node} ({error.phase}): {error.remote_traceback.strip().splitlines()[-1:]}")
    if manager.check is not None:
        click.echo(manager.check.summary())
    if manager.session is not None:
        click.echo(f"archive: {manager.session.path}")
