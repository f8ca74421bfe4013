"""Plain-text tables for the command line (no dependency beyond click)."""

from __future__ import annotations

from collections.abc import Sequence

import click


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int = 80) -> str:
    """Columns padded to their widest cell (cells cut at ``max_width``), a rule under the header."""
    cells = [[str(c) if len(str(c)) <= max_width else str(c)[: max_width - 1] + "…" for c in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    click.echo(render(headers, rows))
