"""Tabular streams: ``name.csv`` with a first column ``timestamp``; one time per row."""

from __future__ import annotations

import io
from functools import cached_property
from typing import Any

import numpy as np

from chimerapy.archive.files import (
    CsvTable,
    complete_lines,
    numeric_columns,
    parse_cell,
    require_pandas,
)
from chimerapy.archive.stream import Stream

__all__ = ["TabularStream"]


class TabularStream(Stream):
    """A recorded table: ``table()`` is a pandas DataFrame, ``value(i)`` row ``i`` as a dict."""

    kind = "tabular"

    @cached_property
    def _table(self) -> CsvTable:
        return self._read_csv("csv")

    @property
    def columns(self) -> list[str]:
        """The column names, ``timestamp`` first."""
        return list(self._table.header)

    def _load_times(self) -> np.ndarray:
        path = self.file("csv")
        assert path is not None
        columns, torn = numeric_columns(path, ["timestamp"])
        self._note_torn(path, torn)
        return columns["timestamp"]

    def value(self, index: int) -> dict[str, Any]:
        row = self._table.rows[self._check_index(index)]
        return {column: parse_cell(cell) for column, cell in zip(self._table.header, row)}

    def table(self) -> Any:
        """Every complete row as a ``pandas.DataFrame`` (needs pandas), ``timestamp`` first."""
        pandas = require_pandas()
        path = self.file("csv")
        assert path is not None
        data, _ = complete_lines(path)
        frame = pandas.read_csv(io.BytesIO(data))
        return frame.iloc[: self.count]
