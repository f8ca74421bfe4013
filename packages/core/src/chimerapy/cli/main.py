"""``chimerapy``: the application command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import registry
from ..__about__ import __version__
from .table import echo_table


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chimerapy")
def main() -> None:
    """ChimeraPy: collect, process, archive and monitor multimodal data."""


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
    rows = [(i.name, i.kind, f"{i.package} {i.version}", f"BROKEN: {i.error}" if i.broken else i.summary)
            for i in infos]
    echo_table(["name", "kind", "package", "summary"], rows)
    if verbose:
        for info in infos:
            options = ", ".join(f"{p.name}: {p.annotation or 'any'}" + ("" if p.required else f" = {p.default}")
                                for p in info.parameters)
            click.echo(f"\n{info.name}({options})")
    broken = [i for i in infos if i.broken]
    if broken:
        click.echo(f"\n{len(broken)} node(s) unusable; the others work.", err=True)


def _as_dict(info: registry.NodeInfo) -> dict:
    return {"name": info.name, "target": info.target, "package": info.package, "version": info.version,
            "kind": info.kind, "summary": info.summary, "error": info.error,
            "parameters": [{"name": p.name, "annotation": p.annotation, "default": p.default,
                            "required": p.required} for p in info.parameters]}


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


if __name__ == "__main__":
    main()
