"""Tabular records: rows of a CSV file whose first column is the aligned timestamp.

File of a record ``name``: ``name.csv`` with the header ``timestamp,<columns...>``. The columns
are those of the first row saved, in its order; every later row must have the same set of
columns (in any order). A row is a ``dict`` of column name to scalar, a ``pandas.Series``, or a
``pandas.DataFrame`` (each of its rows is saved with the same timestamp; its index is not
saved). Cells are ``str``, ``int``, ``float``, ``bool``, ``None`` (an empty cell), numpy scalars
or ``datetime`` values (written in ISO 8601); floats round-trip exactly.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chimerapy.records.files import CsvFile
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["TabularFormat", "TabularWriter"]

_SCALARS = (str, int, float, bool, type(None))
_ROW_OVERHEAD = 64  # rough bytes a queued row costs beyond its cells


class TabularFormat(RecordFormat):
    """Checks rows; locks in the columns of the first row."""

    kind = "tabular"
    method = "save_tabular"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.columns: tuple[str, ...] | None = None

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.csv",)

    def accept(self, row: Any) -> Accepted:
        """Check a row (or a DataFrame's rows); returns a list of tuples of plain cells."""
        columns, rows = self._split(row)
        for column in columns:
            if not isinstance(column, str):
                raise self.error(f"column names must be str, got {column!r}")
        if len(set(columns)) != len(columns):
            raise self.error(f"the columns {list(columns)} repeat a name; give each a unique name")
        if "timestamp" in columns:
            raise self.error(
                "the column 'timestamp' is reserved for the aligned time; rename it or pass "
                "timestamp=... to save_tabular"
            )
        if self.columns is not None and set(columns) != set(self.columns):
            new = sorted(set(columns) - set(self.columns))
            missing = sorted(set(self.columns) - set(columns))
            raise self.error(
                f"the columns changed: new {new}, missing {missing}; a CSV keeps the columns of "
                f"its first row {list(self.columns)}: save the same keys (None for an empty cell) "
                "or use another record name"
            )
        order = self.columns or tuple(columns)
        position = {column: i for i, column in enumerate(columns)}
        cells = [tuple(self._cell(column, values[position[column]]) for column in order)
                 for values in rows]
        self.columns = order
        return Accepted(cells, items=len(cells), nbytes=len(cells) * (8 * len(order) + _ROW_OVERHEAD))

    def _split(self, row: Any) -> tuple[list[Any], list[tuple[Any, ...]]]:
        """The column names and the rows of values of a dict, Series or DataFrame."""
        pandas = sys.modules.get("pandas")  # a DataFrame implies pandas is imported already
        if pandas is not None and isinstance(row, pandas.DataFrame):
            return list(row.columns), list(row.itertuples(index=False, name=None))
        if pandas is not None and isinstance(row, pandas.Series):
            row = row.to_dict()
        if not isinstance(row, Mapping):
            raise self.error(
                f"a row must be a dict (or a pandas DataFrame or Series), not {type(row).__name__}"
            )
        return list(row.keys()), [tuple(row.values())]

    def _cell(self, column: str, value: Any) -> Any:
        pandas = sys.modules.get("pandas")
        if pandas is not None and value is pandas.NA:
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (datetime.date, datetime.time)):
            return value.isoformat()
        if not isinstance(value, _SCALARS):
            raise self.error(
                f"column {column!r} holds a {type(value).__name__}; CSV cells are scalars "
                "(str, int, float, bool, None): save structured values with save_json"
            )
        return value

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> TabularWriter:
        assert self.columns is not None
        return TabularWriter(directory, self.name, on_file, columns=self.columns)


class TabularWriter(RecordWriter):
    """Appends rows to ``name.csv``."""

    def __init__(
        self,
        directory: Path,
        name: str,
        on_file: Callable[[Path], None],
        *,
        columns: tuple[str, ...],
    ) -> None:
        super().__init__(directory, name, on_file)
        self._csv = CsvFile(self._created(directory / f"{name}.csv"), ("timestamp", *columns))

    def write(self, timestamp: float, payload: list[tuple[Any, ...]]) -> None:
        for cells in payload:
            self._csv.append((timestamp, *cells))

    def flush(self) -> None:
        self._csv.flush()

    def close(self) -> None:
        self._csv.close()
