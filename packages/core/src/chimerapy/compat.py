"""ChimeraPy 0.0.10 compatibility: its ``save_*`` argument orders and the data it accepted.

0.0.10 programs call ``save_audio(name, data, channels, format, rate)`` with PyAudio's
sample-format constants and hand ``save_video``/``save_image`` frames of any numeric dtype.
These pure helpers turn such calls into what :class:`chimerapy.records.Recorder` takes, so the
Node methods accept both the 0.0.10 forms and today's.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .errors import RecordError

__all__ = [
    "PYAUDIO_FORMATS",
    "audio_block",
    "frame_as_uint8",
    "paFloat32",
    "paInt8",
    "paInt16",
    "paInt24",
    "paInt32",
    "paUInt8",
    "resolve_audio_args",
]

log = logging.getLogger(__name__)

#: PyAudio's sample-format constants (``pyaudio.paInt16`` ...), the ``format`` of 0.0.10's
#: ``save_audio``.
paFloat32 = 1
paInt32 = 2
paInt24 = 4
paInt16 = 8
paInt8 = 16
paUInt8 = 32
#: PyAudio format constant -> a name of the sample layout it stands for.
PYAUDIO_FORMATS: dict[int, str] = {
    paFloat32: "float32",
    paInt32: "int32",
    paInt24: "int24",
    paInt16: "int16",
    paInt8: "int8",
    paUInt8: "uint8",
}

_MISSING: Any = object()


def resolve_audio_args(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, int, int, int | None]:
    """Read a ``save_audio`` call in either order; returns ``(data, rate, channels, format)``.

    Today's order is ``(samples, rate, channels)``; 0.0.10's is ``(data, channels, format,
    rate)``. Three positional values after the data, or a ``format=`` keyword, mean 0.0.10's
    order; the keywords ``data``/``samples``, ``rate`` and ``channels`` are unambiguous.
    ``format`` is ``None`` for today's form (the samples' dtype speaks for itself).
    """
    kwargs = dict(kwargs)
    data = kwargs.pop("data", _MISSING)
    samples = kwargs.pop("samples", _MISSING)
    if data is not _MISSING and samples is not _MISSING:
        raise TypeError(f"save_audio({name!r}): give the samples once, as data= or samples=")
    values = list(args)
    if data is _MISSING:
        data = samples
    if data is _MISSING:
        if not values:
            raise TypeError(f"save_audio({name!r}) needs the samples (data=...)")
        data = values.pop(0)
    legacy = len(values) >= 3 or "format" in kwargs
    order = ("channels", "format", "rate") if legacy else ("rate", "channels")
    if len(values) > len(order):
        raise TypeError(f"save_audio({name!r}) takes at most {len(order)} values after the data")
    named = dict(zip(order, values))
    for key in ("rate", "channels", "format"):
        if key in kwargs:
            if key in named:
                raise TypeError(f"save_audio({name!r}) got {key} both by position and by keyword")
            named[key] = kwargs.pop(key)
    if kwargs:
        raise TypeError(f"save_audio({name!r}) got unexpected keyword arguments {sorted(kwargs)}")
    missing = [key for key in ("rate", "channels") if key not in named]
    if missing:
        raise TypeError(f"save_audio({name!r}) needs {' and '.join(missing)}")
    fmt = named.get("format")
    return data, named["rate"], named["channels"], None if fmt is None else int(fmt)


def audio_block(name: str, data: Any, channels: int, fmt: int | None) -> np.ndarray:
    """Turn what 0.0.10 accepted into an ``int16`` or ``float32`` ``(n, channels)`` block.

    ``data`` may be the bytes PyAudio's ``stream.read`` returns (read in ``fmt``), or an array
    of any numeric dtype, interleaved 1-D for several channels. Floats are taken as lying in
    ``[-1, 1]``; integers are rescaled to the sample format ``fmt`` names (int16 when it is
    ``None`` or ``paInt16``, float32 otherwise).
    """
    layout = PYAUDIO_FORMATS.get(fmt, "") if fmt is not None else ""
    if fmt is not None and not layout:
        raise RecordError(
            f"record {name!r}: format {fmt!r} is not a PyAudio sample format; use one of "
            f"{sorted(PYAUDIO_FORMATS)} (pyaudio.paInt16 = 8, paFloat32 = 1, ...)",
            record=name,
        )
    if isinstance(data, (bytes, bytearray, memoryview)):
        array = _from_bytes(name, bytes(data), layout or "int16")
    else:
        array = np.asarray(data)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise RecordError(
                f"record {name!r}: audio data must be numbers or PyAudio bytes, got {array.dtype}",
                record=name,
            )
    if array.ndim == 1 and channels > 1:
        if array.size % channels:
            raise RecordError(
                f"record {name!r}: {array.size} interleaved samples do not divide into "
                f"{channels} channels",
                record=name,
            )
        array = array.reshape(-1, channels)
    want_int16 = layout in ("", "int16", "int8", "uint8")
    if array.dtype == np.int16 and want_int16:
        return array
    if array.dtype == np.float32 and not want_int16:
        return array
    unit = _as_unit_float(array)
    if want_int16:
        return np.round(np.clip(unit, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    return unit.astype(np.float32)


def frame_as_uint8(frame: Any) -> np.ndarray:
    """Convert a frame or image of any numeric dtype to ``uint8`` as 0.0.10 did.

    Values are clipped to ``[0, 255]`` and truncated (``uint8`` passes through unchanged);
    ``uint16`` is scaled down by 257 so its full range fits.
    """
    array = np.asarray(frame)
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array // 257).astype(np.uint8)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    return np.clip(array, 0, 255).astype(np.uint8)


def _from_bytes(name: str, data: bytes, layout: str) -> np.ndarray:
    if layout == "int24":
        if len(data) % 3:
            raise RecordError(f"record {name!r}: {len(data)} bytes are not whole 24-bit samples", record=name)
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        return np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.int32) << 8
    dtype = np.dtype({"float32": "<f4", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1"}[layout])
    if len(data) % dtype.itemsize:
        raise RecordError(f"record {name!r}: {len(data)} bytes are not whole {layout} samples", record=name)
    return np.frombuffer(data, dtype=dtype)


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    """Samples as float64 in about ``[-1, 1]``, from any numeric dtype."""
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    if array.dtype == np.uint8:
        return (array.astype(np.float64) - 128.0) / 128.0
    info = np.iinfo(array.dtype)
    return array.astype(np.float64) / float(-info.min if info.min < 0 else info.max)
