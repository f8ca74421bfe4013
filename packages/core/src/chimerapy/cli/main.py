"""``chimerapy``: the application command line."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import registry
from ..__about__ import __version__
from ..errors import ChimeraPyError
from ..pipeline import PipelineError
from ..pipeline_checks import CheckedPipeline, check_pipeline
from .collect import collect
from .export import export
from .report import report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chimerapy")
def main() -> None:
    """ChimeraPy: collect, process, archive and monitor multimodal data."""


@main.command()
@click.argument("pipeline_file", type=click.Path(path_type=Path))
@click.option("--runtime", type=float, default=None, help="Seconds to run (default: the file's runtime, else until Ctrl-C).")
@click.option("--logdir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where the archive goes.")
@click.option("--host", default=None, help="Interface the Manager listens on (default: the file's, else loopback).")
@click.option("--port", type=int, default=None, help="The Manager's port (default: the file's).")
@click.option("-v", "--verbose", count=True, help="Log to the terminal (-v info, -vv debug).")
def run(pipeline_file: Path, runtime: float | None, logdir: Path | None, host: str | None, port: int | None,
        verbose: int) -> None:
    """Run the pipeline in PIPELINE_FILE end to end and print where its archive is.

    PIPELINE_FILE may be a session's meta.json (or its folder): the pipeline that recorded the
    session runs again, into a new session beside it.
    """
    from .run import run_pipeline

    _configure_logging(verbose)
    checked = _check_or_exit(pipeline_file)
    try:
        code = run_pipeline(checked, logdir=logdir, runtime=runtime, host=host, port=port)
    except (ChimeraPyError, OSError) as error:
        click.echo(f"chimerapy run: {error}", err=True)
        code = 1
    sys.exit(code)


@main.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False, path_type=Path))
def validate(pipeline_file: Path) -> None:
    """Check PIPELINE_FILE as `run` does before starting anything.

    Its format, names, mapping, registry names, option names and types, each node's own checks of
    its options, and the graph (no cycle). Exit status 2 and every problem when it fails.
    """
    pipeline = _check_or_exit(pipeline_file).pipeline
    click.echo(f"{pipeline_file}: OK ({len(pipeline.nodes)} nodes, {len(pipeline.edges)} edges, "
               f"{len(pipeline.workers)} workers)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", type=int, default=9000, show_default=True, help="Port (a free one if taken).")
@click.option("--logdir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True)
@click.option("--token", default=None,
              help="The cluster token in clear (deprecated: other users can read command lines; set CHIMERAPY_TOKEN).")
@click.option("--announce", is_flag=True, help="Announce the Manager on the local network (cp-worker --discover).")
@click.option("--tls-certificate", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A PEM certificate to serve (default: a self-signed one kept in LOGDIR/.chimerapy/tls).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None, help="Its PEM private key.")
@click.option("-v", "--verbose", count=True, help="Log to the terminal (-v info, -vv debug).")
def manager(host: str, port: int, logdir: Path, token: str | None, announce: bool, tls_certificate: str | None, tls_key: str | None,
            verbose: int) -> None:
    """Run a long-lived Manager with the REST API and the dashboard, until Ctrl-C.

    The cluster token is $CHIMERAPY_TOKEN, else the one kept in LOGDIR/.chimerapy/token, else a new one.
    """
    from ..manager.manager import Manager

    _configure_logging(verbose)
    if token is not None:
        click.echo("chimerapy manager: --token puts the cluster token on the command line, where other users can "
                   "read it; set CHIMERAPY_TOKEN instead", err=True)
    instance = Manager(logdir=logdir, port=port, host=host, token=token, announce=announce, tls_certificate=tls_certificate,
                       tls_key=tls_key)
    from .join import print_join_instructions

    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: the same clean shutdown as Ctrl-C
    try:  # from here on a Ctrl-C, whenever it comes, ends in a clean shutdown
        print_join_instructions(instance)
        origin = f"https://{instance.host}:{instance.port}"
        click.echo("Load a pipeline: open the dashboard and build or open one in its editor, or POST a pipeline\n"
                   f"file to {origin}/api/pipeline (then /api/start; /api/stop ends the recording and collects it)\n"
                   f"with the header 'Authorization: Bearer <the token in {instance.token_file}>', trusting only the\n"
                   "certificate with the fingerprint above.")
        instance.wait_until_shutdown()
    except KeyboardInterrupt:
        click.echo("shutting down ...")
    finally:
        instance.shutdown()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_or_exit(path: Path) -> CheckedPipeline:
    """The pipeline file at ``path`` after every check (warnings on stderr), or exit status 2."""
    try:
        checked = check_pipeline(path)
    except PipelineError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    except ChimeraPyError as error:  # a pack that fails to import
        click.echo(f"{path}: {error}", err=True)
        sys.exit(2)
    for json_path, message in checked.warnings:
        click.echo(f"{path}: warning: {json_path}: {message}", err=True)
    return checked


def _configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--no-check", is_flag=True, help="List without importing the packs (faster; broken packs unseen).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("-v", "--verbose", is_flag=True, help="Show each node's options.")
def nodes(no_check: bool, as_json: bool, verbose: bool) -> None:
    """List the nodes that installed node packs provide."""
    infos = registry.available()
    if not no_check:
        infos = [registry.check(info) for info in infos]
    if as_json:
        click.echo(json.dumps([_as_dict(info) for info in infos], indent=2))
        return
    if not infos:
        click.echo("No nodes registered. Install a node pack, e.g. pip install chimerapy-nodes-video")
        return
    console = Console(width=None if sys.stdout.isatty() else 200)  # piped: whole lines
    if not verbose:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for header in ("name", "kind", "package", "summary"):
            table.add_column(header, no_wrap=header != "summary", overflow="fold")
        for i in infos:
            table.add_row(i.name, i.kind, f"{i.package} {i.version}",
                          f"[red]BROKEN: {escape(i.error or '')}[/]" if i.broken else escape(i.summary))
        console.print(table)
    for info in infos if verbose else ():
        console.print(f"\n[bold]{info.name}[/]  ({info.kind}, {info.package} {info.version})")
        console.print(f"[red]BROKEN: {escape(info.error or '')}[/]" if info.broken else escape(info.summary))
        if info.parameters:
            options = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for header in ("option", "type", "default", "description"):
                options.add_column(header, no_wrap=header == "option", overflow="fold")
            for p in info.parameters:
                options.add_row(p.name, escape(p.annotation or "any"),
                                "(required)" if p.required else escape(str(p.default)), escape(p.description))
            console.print(options)
        for old, new in info.renamed.items():
            console.print(f"  former option name: {old} (now {new})")
    broken = [i for i in infos if i.broken]
    if broken:
        click.echo(f"\n{len(broken)} node(s) unusable; the others work.", err=True)


def _as_dict(info: registry.NodeInfo) -> dict:
    return {"name": info.name, "target": info.target, "package": info.package, "version": info.version,
            "kind": info.kind, "summary": info.summary, "doc": info.doc, "error": info.error,
            "renamed": info.renamed,
            "parameters": [{"name": p.name, "annotation": p.annotation, "default": p.default,
                            "required": p.required, "description": p.description} for p in info.parameters]}


@main.command("new-pack")
@click.argument("name")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to create it (default: ./chimerapy-nodes-NAME).")
def new_pack(name: str, directory: Path | None) -> None:
    """Create a working third-party node pack NAME (with a test) to start from."""
    from ..pack_template import create_pack

    try:
        folder = create_pack(name, directory)
    except (ValueError, FileExistsError) as error:
        click.echo(f"chimerapy new-pack: {error}", err=True)
        sys.exit(2)
    click.echo(f"created {folder}\n  pip install -e {folder}\n  chimerapy nodes\n  pytest {folder}")


main.add_command(report)
main.add_command(export)
main.add_command(collect)

if __name__ == "__main__":
    main()
