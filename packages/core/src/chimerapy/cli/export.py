"""``chimerapy export SESSION --to xdf|mcap``: one file for LabRecorder's or Foxglove's users."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

__all__ = ["export"]


@click.command()
@click.argument("session", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["xdf", "mcap"]), required=True, help="The format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: SESSION/<session>.xdf or .mcap).")
def export(session: Path, target: str, output: Path | None) -> None:
    """Export SESSION to one XDF (pyxdf, MNE) or MCAP (Foxglove) file."""
    from ..archive.errors import ArchiveError
    from ..archive.session import open_session

    began = time.monotonic()
    try:
        opened = open_session(session)
        output = output or session / f"{opened.id}.{target}"
        if target == "xdf":
            from ..archive.export_xdf import export_xdf

            export_xdf(opened, output)
        else:
            from ..archive.export_mcap import export_mcap

            export_mcap(opened, output)
    except (ArchiveError, OSError) as error:
        click.echo(f"chimerapy export: {error}", err=True)
        sys.exit(2)
    click.echo(f"wrote {output} ({output.stat().st_size} bytes) in {time.monotonic() - began:.1f} s")
