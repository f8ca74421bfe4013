"""The data-plane wire format: DataChunks to ZeroMQ frames and back, as pure functions.

A message is one header frame followed by buffer frames::

    header  = b"CPY1" + JSON {"k": kind, "seq", "p": producer, "i": incarnation, "t": produced_at,
                               "r": [record...]}
    buffers = the raw bytes of numpy arrays, or a pickle (protocol 5) and its out-of-band buffers

Kinds are ``"d"`` (data) and ``"e"`` (end of stream: ``seq`` is the last data sequence number sent,
-1 for none). Each record names its encoding and the frames it owns (``f``: first and end index):

- ``"v"``: a plain scalar (``int``, ``float``, ``str``, ``bool``, ``None``) held in the header
  itself (``v``); it owns no frame.
- ``"nd"``: a numpy array (not of object dtype): ``dtype`` descr, ``shape``, one raw frame.
- ``"pk"``: anything else: a pickle frame plus its out-of-band buffers (numpy arrays nested in
  dicts or lists travel as raw frames, never copied into the pickle).
- ``"jpg"``: an ``"image"`` record JPEG-encoded for a subscriber on another host (``s``: its shape).
- ``"shm"``: a large array in a shared-memory slot of the producer (``m``: the slot reference),
  for subscribers on the same host; the header's ``c`` lists them, in the slot's order. It owns
  no frame.

Decoding never copies array data: arrays are read-only views of the received frames.
"""

from __future__ import annotations

import math
import pickle
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ..data_chunk import CONTENT_TYPES, DataChunk
from ..errors import ProtocolError, UnsendableRecordError
from . import header_json
from .shm import SHM_THRESHOLD

__all__ = ["MAGIC", "Message", "as_bytes_view", "decode", "encode_chunk", "encode_end", "pack", "pack_head", "unpack"]

MAGIC = b"CPY1"
_MAX_HEADER = 1 << 20
#: Values of these exact types (not subclasses such as numpy scalars) travel inside the header.
_INLINE_TYPES = frozenset({int, float, str, bool, type(None)})
_INLINE_MAX_STR = 1024
_DTYPES: dict[str, np.dtype] = {}  # descr string -> dtype, for the common simple dtypes

Buffer = Any  # bytes, memoryview, numpy array, or zmq.Frame: anything with the buffer protocol


@dataclass(slots=True)
class Message:
    """A decoded data-plane message.

    Attributes:
        kind: ``"d"`` for data, ``"e"`` for the end of a producer's stream.
        seq: the sequence number (for ``"e"``: the last data sequence number sent).
        producer: the producing node's name.
        produced_at: Manager-aligned time at which the chunk was published.
        chunk: the DataChunk (``None`` for ``"e"``).
        incarnation: which run of the producer sent it (a restarted node starts a new sequence).
    """

    kind: str
    seq: int
    producer: str
    produced_at: float
    chunk: DataChunk | None = None
    incarnation: str = ""


def encode_chunk(
    chunk: DataChunk,
    *,
    seq: int,
    producer: str,
    produced_at: float,
    image_encoder: Callable[[np.ndarray], bytes] | None = None,
    incarnation: str = "",
    shm: Callable[[np.ndarray], dict | None] | None = None,
    consumers: list[str] | None = None,
) -> list[Buffer]:
    """Encode ``chunk`` as frames ready for ``send_multipart(..., copy=False)``.

    The arrays of the chunk are referenced, not copied: they must stay unchanged until sent.
    ``image_encoder`` (e.g. JPEG for another host) is applied to ``"image"`` records; ``shm``
    places large arrays in shared memory for the ``consumers`` on this host (None: send bytes).
    The producer's name is appended to each record's ownership.

    Raises:
        UnsendableRecordError: a record cannot be serialised (nothing was placed in shared memory).
    """
    pickled = _pickle_all(chunk)  # first: a record that cannot be sent must not take a shm slot
    records: list[dict[str, Any]] = []
    frames: list[Buffer] = [b""]
    for name, record in chunk.items():
        value = record["value"]
        ctype = record["content-type"]
        entry: dict[str, Any] = {"n": name, "c": ctype, "o": [*record["ownership"], producer]}
        first = len(frames)
        kind = type(value)
        if kind in _INLINE_TYPES and (kind is not str or len(value) <= _INLINE_MAX_STR):
            entry["e"], entry["v"] = "v", value
            records.append(entry)
            continue
        if image_encoder is not None and ctype == "image" and _is_image(value):
            entry["e"], entry["s"] = "jpg", list(value.shape)
            frames.append(image_encoder(value))
        elif isinstance(value, np.ndarray) and not value.dtype.hasobject:
            array = value if value.flags.c_contiguous else value.copy(order="C")
            entry["d"] = np.lib.format.dtype_to_descr(array.dtype)
            entry["s"] = list(array.shape)
            reference = shm(array) if shm is not None and array.nbytes >= SHM_THRESHOLD else None
            if reference is not None:
                entry["e"], entry["m"] = "shm", reference
                records.append(entry)
                continue
            entry["e"] = "nd"
            frames.append(array.reshape(-1).view(np.uint8) if array.size else b"")
        else:
            entry["e"] = "pk"
            data, out_of_band = pickled[name]
            frames.append(data)
            frames.extend(buffer.raw() for buffer in out_of_band)
        entry["f"] = [first, len(frames)]
        records.append(entry)
    header = {"k": "d", "seq": seq, "p": producer, "i": incarnation, "t": produced_at, "r": records}
    if consumers is not None and any(entry["e"] == "shm" for entry in records):
        header["c"] = consumers
    frames[0] = MAGIC + header_json.dumps(header).encode()
    return frames


def _pickle_all(chunk: DataChunk) -> dict[str, tuple[bytes, list[pickle.PickleBuffer]]]:
    """The pickle (and out-of-band buffers) of every record that travels as ``"pk"``.

    Raises:
        UnsendableRecordError: naming the first record that cannot be pickled, and why.
    """
    pickled = {}
    for name, record in chunk.items():
        value = record["value"]
        kind = type(value)
        if kind in _INLINE_TYPES and (kind is not str or len(value) <= _INLINE_MAX_STR):
            continue
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            continue
        out_of_band: list[pickle.PickleBuffer] = []
        try:
            data = pickle.dumps(value, protocol=5, buffer_callback=out_of_band.append)
        except Exception as error:
            reason = f"its value of type {type(value).__name__} cannot be pickled ({type(error).__name__}: {error})"
            raise UnsendableRecordError(
                f"record {name!r}: {reason}; send plain data, numpy arrays or picklable objects",
                record=name, reason=reason,
            ) from error
        pickled[name] = (data, out_of_band)
    return pickled


def encode_end(*, last_seq: int, producer: str, produced_at: float, incarnation: str = "") -> list[bytes]:
    """Encode the end-of-stream marker a producer sends after its last chunk."""
    header = {"k": "e", "seq": last_seq, "p": producer, "i": incarnation, "t": produced_at, "r": []}
    return [MAGIC + header_json.dumps(header).encode()]


def decode(
    frames: Sequence[Buffer],
    *,
    image_decoder: Callable[[memoryview], np.ndarray] | None = None,
    shm_view: Callable[[dict, np.dtype, tuple, int], np.ndarray] | None = None,
    consumer: str | None = None,
    expected_producer: str | None = None,
) -> Message:
    """Decode frames from :func:`encode_chunk` or :func:`encode_end`.

    ``shm_view`` maps shared-memory records for the subscriber named ``consumer``. With
    ``expected_producer``, a message whose header names another producer is refused before any record
    is decoded (nothing from a connection is unpickled unless it is that connection's producer).

    Raises:
        ProtocolError: for anything that is not a well-formed message (foreign or garbage
            frames); the caller counts and drops it.
    """
    if not frames:
        raise ProtocolError("empty message")
    head = frames[0] if isinstance(frames[0], bytes) else bytes(as_bytes_view(frames[0])[:_MAX_HEADER + 1])
    if not head.startswith(MAGIC):
        raise ProtocolError("not a ChimeraPy data message (bad magic)")
    if len(head) > _MAX_HEADER:
        raise ProtocolError(f"header of {len(head)} bytes exceeds {_MAX_HEADER}")
    try:
        header = header_json.loads(head[len(MAGIC) :].decode())
        kind, seq, producer, produced_at = header["k"], header["seq"], header["p"], header["t"]
        records = header["r"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise ProtocolError(f"malformed header: {type(error).__name__}: {str(error)[:200]}") from None
    if kind not in ("d", "e") or not isinstance(seq, int) or not isinstance(producer, str):
        raise ProtocolError(f"malformed header fields: kind={kind!r} seq={seq!r}")
    if not isinstance(produced_at, (int, float)) or not isinstance(records, list):
        raise ProtocolError("malformed header: time or records of the wrong type")
    if expected_producer is not None and producer != expected_producer:
        raise ProtocolError(f"a message naming producer {producer!r} on {expected_producer!r}'s connection")
    message = Message(kind, seq, producer, float(produced_at), incarnation=str(header.get("i", "")))
    if kind == "e":
        return message
    chunk = DataChunk()
    consumers = header.get("c") or []
    index = consumers.index(consumer) if consumer in consumers else -1
    for entry in records:
        name, record = _decode_record(entry, frames, image_decoder, shm_view, index)
        chunk._records[name] = record  # built and checked here: no need for update()'s copy
    chunk.producer, chunk.seq, chunk.produced_at = producer, seq, float(produced_at)
    message.chunk = chunk
    return message


def _decode_record(
    entry: Any, frames: Sequence[Buffer], image_decoder: Callable | None, shm_view: Callable | None, index: int
) -> tuple[str, dict[str, Any]]:
    try:
        name, ctype, ownership, encoding = entry["n"], entry["c"], entry["o"], entry["e"]
    except (KeyError, TypeError) as error:
        raise ProtocolError(f"malformed record entry: {error}") from error
    if ctype not in CONTENT_TYPES or not isinstance(ownership, list):
        raise ProtocolError(f"record {name!r}: bad content type or ownership")
    if encoding == "v":
        if "v" not in entry or type(entry["v"]) not in _INLINE_TYPES:
            raise ProtocolError(f"record {name!r}: inline value missing or not a scalar")
        value = entry["v"]
    elif encoding == "shm":
        value = _decode_shared(name, entry, shm_view, index)
    else:
        value = _decode_framed(name, entry, encoding, _owned_views(name, entry, frames), image_decoder)
    return name, {"value": value, "content-type": ctype, "ownership": ownership}


def _owned_views(name: str, entry: dict, frames: Sequence[Buffer]) -> list[memoryview]:
    """Views of the frames the record owns (its ``f`` range)."""
    try:
        first, end = entry["f"]
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(f"record {name!r}: malformed frame range: {error}") from error
    if not (isinstance(first, int) and isinstance(end, int) and 1 <= first < end <= len(frames)):
        raise ProtocolError(f"record {name!r}: frame range {first}..{end} out of bounds")
    return [as_bytes_view(frame) for frame in frames[first:end]]


def _decode_framed(name: str, entry: dict, encoding: Any, views: list[memoryview],
                   image_decoder: Callable | None) -> Any:
    """The value of a record carried in frames: an array, a pickle or a JPEG image."""
    if encoding == "nd":
        return _decode_array(name, entry, views[0])
    if encoding == "pk":
        try:
            return pickle.loads(views[0], buffers=views[1:])
        except Exception as error:
            raise ProtocolError(f"record {name!r}: cannot unpickle: {error}") from error
    if encoding == "jpg":
        if image_decoder is None:
            raise ProtocolError(f"record {name!r}: JPEG image but no decoder available")
        return _decode_image(name, entry, views[0], image_decoder)
    raise ProtocolError(f"record {name!r}: unknown encoding {encoding!r}")


def _decode_shared(name: str, entry: dict, shm_view: Callable | None, index: int) -> np.ndarray:
    if shm_view is None or index < 0:
        raise ProtocolError(f"record {name!r}: in shared memory this subscriber cannot read")
    dtype, shape, expected = _layout(name, entry)
    reference = entry.get("m")
    if not isinstance(reference, dict) or reference.get("n") != expected:
        raise ProtocolError(f"record {name!r}: bad shared-memory reference {reference!r}")
    try:
        return shm_view(reference, dtype, shape, index)
    except (OSError, ValueError, TypeError) as error:
        raise ProtocolError(f"record {name!r}: cannot map its shared memory: {error}") from error


def _decode_image(name: str, entry: dict, view: memoryview, image_decoder: Callable) -> np.ndarray:
    try:
        image = image_decoder(view)
        shape = tuple(int(n) for n in entry.get("s", image.shape))
        image = image.reshape(shape)
    except (ValueError, TypeError) as error:
        raise ProtocolError(f"record {name!r}: bad JPEG image: {error}") from error
    image.flags.writeable = False
    return image


def _layout(name: str, entry: dict) -> tuple[np.dtype, tuple[int, ...], int]:
    try:
        dtype = _dtype(entry["d"])
        shape = tuple(int(n) for n in entry["s"])
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(f"record {name!r}: bad dtype or shape: {error}") from error
    if any(n < 0 for n in shape):
        raise ProtocolError(f"record {name!r}: negative shape {shape}")
    return dtype, shape, dtype.itemsize * math.prod(shape)


def _dtype(descr: Any) -> np.dtype:
    """The dtype of a descr from the header (simple ones are looked up, not parsed again)."""
    if not isinstance(descr, str):
        return np.lib.format.descr_to_dtype(_descr(descr))
    dtype = _DTYPES.get(descr)
    if dtype is None:
        dtype = np.lib.format.descr_to_dtype(cast(Any, descr))  # a str descr is fine; the stub says list
        if len(_DTYPES) < 256:
            _DTYPES[descr] = dtype
    return dtype


def _decode_array(name: str, entry: dict, view: memoryview) -> np.ndarray:
    dtype, shape, expected = _layout(name, entry)
    if len(view) != expected:
        raise ProtocolError(
            f"record {name!r}: {len(view)} bytes do not hold an array {shape} of {dtype}"
        )
    array = np.empty(shape, dtype=dtype) if expected == 0 else np.frombuffer(view, dtype=dtype).reshape(shape)
    array.flags.writeable = False  # received values are read-only, whichever way they came
    return array


def _descr(raw: Any) -> Any:
    """JSON turns the tuples of a structured dtype's descr into lists; turn them back."""
    if not isinstance(raw, list):
        return raw
    if all(isinstance(n, int) for n in raw):  # a sub-array shape
        return tuple(raw)
    return [tuple(_descr(part) for part in field) for field in raw]


def as_bytes_view(frame: Buffer) -> memoryview:
    """A flat byte view of ``frame`` (bytes, array, ``zmq.Frame`` ...), without a copy."""
    buffer: Any = getattr(frame, "buffer", frame)  # zmq.Frame exposes .buffer
    view = memoryview(buffer)
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _is_image(value: Any) -> bool:
    return (
        isinstance(value, np.ndarray)
        and value.dtype == np.uint8
        and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (1, 3)))
    )


def pack(frames: Sequence[Buffer]) -> bytes:
    """Join a message's frames into one buffer (for sockets that keep only the latest message)."""
    views = [as_bytes_view(frame) for frame in frames]
    return b"".join([pack_head(views), *views])


def pack_head(views: Sequence[memoryview]) -> bytes:
    """What :func:`pack` puts before the frames: their count and sizes."""
    return struct.pack(f"<I{len(views)}Q", len(views), *(len(v) for v in views))


def unpack(buffer: Buffer) -> list[memoryview]:
    """Split a :func:`pack` ed buffer back into frames (views, no copy)."""
    view = as_bytes_view(buffer)
    try:
        (count,) = struct.unpack_from("<I", view)
        sizes = struct.unpack_from(f"<{count}Q", view, 4)
    except struct.error as error:
        raise ProtocolError(f"malformed packed message: {error}") from None
    offset = 4 + 8 * count
    if offset + sum(sizes) != len(view):
        raise ProtocolError("packed message sizes do not add up")
    frames = []
    for size in sizes:
        frames.append(view[offset : offset + size])
        offset += size
    return frames
