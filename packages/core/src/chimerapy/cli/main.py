"""``chimerapy``: the application command line."""

from __future__ import annotations

import click

from ..__about__ import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chimerapy")
def main() -> None:
    """ChimeraPy: collect, process, archive and monitor multimodal data."""


if __name__ == "__main__":
    main()
