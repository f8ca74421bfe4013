"""Array records: numpy arrays stacked in growing ``.npy`` files, one aligned timestamp each.

Files of a record ``name``:

* ``name.000000.npy``, ``name.000001.npy``, ...: standard NumPy ``.npy`` files (format 1.0), each
  a stack of arrays of one dtype and shape: ``np.load`` gives an array of shape
  ``(n, *shape)``. A new file starts whenever the dtype or the shape changes. Each file grows at
  every flush (about twice a second): its data is appended first, then its header's ``n`` is
  rewritten in place (the header has a fixed size of 256 bytes), so a process killed at any
  moment leaves a file that loads up to its last flush.
* ``name.arrays.csv``: ``file,row,timestamp``, one row per saved array: the ``.npy`` file holding
  it, its index along the first axis of that file, and its Manager-aligned time. Rows reach the
  disk after their data, so the index never names an array that is missing.

Arrays of any numeric, boolean, complex, fixed-width string or structured dtype are taken; an
``object`` array is not (it has no raw bytes: save it with ``save_json``). Arrays are copied at
the call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from chimerapy.records.files import AppendFile, CsvFile
from chimerapy.records.kind import Accepted, RecordFormat, RecordWriter

__all__ = ["HEADER_BYTES", "ArrayFormat", "ArrayWriter", "npy_header"]

#: The size of every ``.npy`` header written here, so that it can be rewritten in place.
HEADER_BYTES = 256
_MAGIC = b"\x93NUMPY\x01\x00"


class ArrayFormat(RecordFormat):
    """Checks arrays; nothing is locked in (a new dtype or shape starts a new file)."""

    kind = "array"
    method = "save_array"

    @staticmethod
    def file_names(name: str) -> tuple[str, ...]:
        return (f"{name}.arrays.csv", f"{name}.000000.npy")

    def accept(self, array: Any) -> Accepted:
        """Check one array; returns a private C-contiguous copy of it."""
        if not isinstance(array, (np.ndarray, np.generic)):
            raise self.error(
                f"an array must be a numpy array, not {type(array).__name__}; convert it with "
                "np.asarray(...) (or use save_json for lists and dicts)"
            )
        data = np.array(array, copy=True, order="C")
        if data.dtype.hasobject:
            raise self.error(
                f"an array of dtype {data.dtype} holds Python objects, which have no raw bytes; "
                "use a numeric dtype, or save the values with save_json"
            )
        try:
            npy_header(data.dtype, (0, *data.shape))
        except ValueError as exc:
            raise self.error(str(exc)) from None
        return Accepted(data, nbytes=data.nbytes)

    def open_writer(self, directory: Path, on_file: Callable[[Path], None]) -> ArrayWriter:
        return ArrayWriter(directory, self.name, on_file)


class ArrayWriter(RecordWriter):
    """Appends arrays to the current ``name.NNNNNN.npy`` file and indexes them."""

    def __init__(self, directory: Path, name: str, on_file: Callable[[Path], None]) -> None:
        super().__init__(directory, name, on_file)
        self._index = CsvFile(self._created(directory / f"{name}.arrays.csv"), ("file", "row", "timestamp"))
        self._files = 0
        self._file: AppendFile | None = None
        self._layout: tuple[np.dtype, tuple[int, ...]] | None = None
        self._rows = 0  # arrays in the current file, flushed or not
        self._header_rows = -1  # the count its header says

    def write(self, timestamp: float, payload: np.ndarray) -> None:
        layout = (payload.dtype, payload.shape)
        if self._file is None or layout != self._layout:
            self._start(layout)
        assert self._file is not None
        self._file.append(payload.tobytes())
        self._index.append((self._file.path.name, self._rows, timestamp))
        self._rows += 1

    def _start(self, layout: tuple[np.dtype, tuple[int, ...]]) -> None:
        if self._file is not None:
            self._flush_file()
            self._file.close()
        path = self._created(self.directory / f"{self.name}.{self._files:06d}.npy")
        self._files += 1
        self._file = AppendFile(path)
        self._layout, self._rows, self._header_rows = layout, 0, -1
        self._file.append(npy_header(layout[0], (0, *layout[1])))

    def _flush_file(self) -> None:
        """Data first, then the header's count: a reader never sees a count beyond the data."""
        if self._file is None or self._layout is None:
            return
        self._file.flush()
        if self._rows != self._header_rows:
            header = npy_header(self._layout[0], (self._rows, *self._layout[1]))
            with open(self._file.path, "r+b") as file:
                file.write(header)
            self._header_rows = self._rows

    def flush(self) -> None:
        self._flush_file()
        self._index.flush()

    def close(self) -> None:
        try:
            if self._file is not None:
                self._flush_file()
                self._file.close()
        finally:
            self._index.close()


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (format 1.0) header of an array of ``dtype`` and ``shape``, padded to 256 bytes.

    Raises:
        ValueError: when the description does not fit (a very complex structured dtype).
    """
    text = repr(
        {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    )
    room = HEADER_BYTES - len(_MAGIC) - 2 - 1  # magic, length, the final newline
    if len(text) > room:
        raise ValueError(
            f"the array's dtype and shape ({dtype}, {shape}) need a header longer than "
            f"{HEADER_BYTES} bytes; use a simpler dtype"
        )
    body = text.ljust(room).encode("latin1") + b"\n"
    return _MAGIC + len(body).to_bytes(2, "little") + body
