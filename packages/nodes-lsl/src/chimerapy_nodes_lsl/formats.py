"""Samples as LSL sees them: channel formats and the conversion of values into sample arrays.

LSL streams have one channel format for every channel: ``float32``, ``double64``, ``int8``,
``int16``, ``int32``, ``int64`` or ``string``. Values become 2-D sample arrays ``(n, channels)``
(channels last) by these rules:

- a ``str`` or ``bytes``, a number or a 0-d array: one sample of one channel;
- a 1-D array, list or tuple: one sample whose channels are its items;
- a 2-D array (or a list of lists): ``n`` samples of ``channels`` each.

Numeric dtypes LSL lacks are widened: ``uint8`` to ``int16``, ``uint16`` to ``int32``,
``uint32`` to ``int64``, ``bool`` to ``int8``, ``float16`` to ``float32``. Everything here is
pure (no pylsl).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chimerapy_nodes_lsl.errors import LslFormatError

__all__ = ["FORMATS", "as_samples", "dtype_of_format", "format_of"]

#: LSL channel format names -> the numpy dtype of their samples (strings: ``str``).
FORMATS: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "double64": np.dtype(np.float64),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "string": np.dtype(str),
}

_WIDER = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "double64",
    np.dtype(np.float16): "float32",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.uint8): "int16",
    np.dtype(np.uint16): "int32",
    np.dtype(np.uint32): "int64",
    np.dtype(np.bool_): "int8",
}


def dtype_of_format(name: str) -> np.dtype:
    """The numpy dtype of samples of the LSL channel format ``name``."""
    try:
        return FORMATS[name]
    except KeyError:
        raise LslFormatError(
            f"unknown LSL channel format {name!r}; use one of {sorted(FORMATS)}"
        ) from None


def format_of(samples: np.ndarray) -> str:
    """The LSL channel format that holds ``samples`` (an array from :func:`as_samples`)."""
    if samples.dtype.kind in "USO":
        return "string"
    try:
        return _WIDER[samples.dtype]
    except KeyError:
        raise LslFormatError(
            f"LSL has no channel format for {samples.dtype} samples; convert them to float64 "
            "(double64) or to a signed integer type first"
        ) from None


def as_samples(value: Any) -> np.ndarray:
    """``value`` as a 2-D ``(n, channels)`` array, by the rules of this module's docstring.

    Strings come back as a numpy ``str`` array (``bytes`` are decoded as UTF-8); numbers keep
    their dtype (see :func:`format_of` for the format they go out as). No copy is made of an
    array that already has the right shape.

    Raises:
        LslFormatError: a value of another type, of more than 2 dimensions, or without samples.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)) and any(isinstance(item, bytes) for item in _flat(value)):
        value = _decoded(value)
    if not isinstance(value, (str, int, float, bool, np.generic, np.ndarray, list, tuple)):
        raise LslFormatError(
            f"cannot publish a {type(value).__name__} on LSL; send numbers, numpy arrays, "
            "strings, or lists of them"
        )
    array = np.asarray(value)
    if array.dtype.kind == "O":
        if not all(isinstance(item, str) for item in array.flat):
            raise LslFormatError(
                "a sample mixes strings and other values (or holds objects); LSL channels all "
                "have one format: send only numbers or only strings"
            )
        array = array.astype(str)
    if array.dtype.kind == "S":
        array = np.char.decode(array, "utf-8", "replace")
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(1, -1)
    elif array.ndim > 2:
        raise LslFormatError(
            f"cannot publish an array of shape {array.shape} on LSL: samples are 2-D "
            "(samples, channels); reshape it first"
        )
    if array.shape[1] == 0:
        raise LslFormatError("cannot publish samples without channels (an empty value)")
    return array


def _flat(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [x for item in value for x in (item if isinstance(item, (list, tuple)) else (item,))]


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_decoded(item) for item in value]
    return value
