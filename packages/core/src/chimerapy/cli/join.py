"""What the CLI prints so that Workers can join: the dashboard link, the fingerprint, the command."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["print_join_instructions"]


def print_join_instructions(manager: Any, names: list[str] | None = None, *, dashboard: bool = True) -> None:
    """Print the dashboard's one-time sign-in URL and the ``cp-worker`` command (neither holds the token)."""
    if dashboard:
        click.echo(f"dashboard (this link signs in once): {manager.dashboard_url()}")
    click.echo(f"certificate fingerprint: {manager.fingerprint}")
    click.echo(f"cluster token file: {manager.token_file} (copy it to each Worker's computer, e.g. with scp; "
               "it is the cluster's secret)")
    click.echo("Workers join with:")
    for name in names or ["<name>"]:
        click.echo(f"  {manager.worker_command(name)}")
