"""Reading the files of a session: whole lines only, so files cut short by a crash still load.

A writer killed mid-write (or a transfer that never finished, left as ``*.part``) can leave a
last line without its newline; every reader here drops such a tail and says so.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.archive.errors import ArchiveError

__all__ = [
    "CsvTable",
    "complete_lines",
    "numeric_columns",
    "parse_cell",
    "private_file",
    "read_csv",
    "require_pandas",
    "time_column",
]


def complete_lines(path: Path) -> tuple[bytes, bool]:
    """The bytes of ``path`` up to its last newline, and whether a torn tail was dropped."""
    data = Path(path).read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end], end < len(data)


@dataclass(frozen=True)
class CsvTable:
    """The header and the string cells of a CSV file's complete rows."""

    header: list[str]
    rows: list[list[str]]
    torn: bool


def read_csv(path: Path) -> CsvTable:
    """Parse a UTF-8 CSV file; a torn last line, and rows of the wrong width, are dropped."""
    data, torn = complete_lines(path)
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    header = next(reader, [])
    rows = [row for row in reader if len(row) == len(header)]
    return CsvTable(header, rows, torn)


def time_column(table: CsvTable, column: str = "timestamp") -> np.ndarray:
    """The float64 values of ``column``; stops at the first cell that is not a number."""
    index = table.header.index(column)
    values = np.empty(len(table.rows), dtype=np.float64)
    for row_number, row in enumerate(table.rows):
        try:
            values[row_number] = float(row[index])
        except ValueError:
            return values[:row_number]
    return values


def numeric_columns(path: Path, names: Sequence[str]) -> tuple[dict[str, np.ndarray], bool]:
    """The float64 values of the columns ``names`` of a CSV file, and whether a torn tail was dropped.

    Fast path for files without quoted cells (every index file): only the wanted columns are
    split out and numpy converts them. Otherwise, or when a cell is not a number, the file is
    parsed as CSV and every column stops at the first row that is not a number.
    """
    data, torn = complete_lines(path)
    text = data.decode("utf-8", errors="replace")
    header_line, _, body = text.partition("\n")
    header = next(csv.reader([header_line]), [])
    if '"' not in body and '"' not in header_line:
        lines = body.split("\n")[:-1]
        try:
            return {name: _column(lines, header.index(name), len(header)) for name in names}, torn
        except (ValueError, IndexError):
            pass
    table = read_csv(path)
    values = {name: time_column(table, name) for name in names}
    shortest = min((len(v) for v in values.values()), default=0)
    return {name: v[:shortest] for name, v in values.items()}, table.torn


def _column(lines: list[str], index: int, width: int) -> np.ndarray:
    if index == 0:
        cells = [line.split(",", 1)[0] for line in lines]
    elif index == width - 1:
        cells = [line.rsplit(",", 1)[-1] for line in lines]
    else:
        cells = [line.split(",")[index] for line in lines]
    return np.array(cells, dtype=np.float64)


def private_file(path: Path, mode: str = "wb") -> io.BufferedWriter:
    """Open ``path`` for writing, created readable by its owner only (0600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(descriptor, mode)  # type: ignore[return-value]


def require_pandas() -> Any:
    """Import pandas, or raise an :class:`ArchiveError` that says how to install it."""
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ArchiveError(
            "loading tables needs pandas: pip install 'chimerapy-core[archive]' (or pandas)"
        ) from None
    return pandas


def parse_cell(cell: str) -> Any:
    """A CSV cell as the recorder wrote it: ``""`` is None, then int, float, bool, else str."""
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    if cell in ("True", "False"):
        return cell == "True"
    return cell
