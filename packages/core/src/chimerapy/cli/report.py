"""``chimerapy report SESSION``: check a recorded session and write ``SESSION/report.html``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["report"]


@click.command()
@click.argument("session", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-html", is_flag=True, help="Print the summary only; write no report.html.")
def report(session: Path, no_html: bool) -> None:
    """Check SESSION (gaps, drops, clocks ...); exit 1 if it found problems."""
    from ..archive.check import check_session
    from ..archive.errors import ArchiveError
    from ..archive.report_html import write_report

    try:
        result = check_session(session)
    except (ArchiveError, OSError) as error:
        click.echo(f"chimerapy report: {error}", err=True)
        sys.exit(2)
    click.echo(result.summary())
    if not no_html:
        click.echo(f"report: {write_report(result, session)}")
    sys.exit(0 if result.clean else 1)
