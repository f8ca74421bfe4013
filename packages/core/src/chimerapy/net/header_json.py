"""JSON for data-plane headers, with the C encoder and scanner made once.

``json.dumps`` and ``JSONDecoder.decode`` set up their C encoder (and whitespace matching) on
every call. A header is small, so that set-up is a good part of its cost, and at a camera's
frame rate every step runs on cold CPU caches, where it costs several times more. Here the C
objects are made once; where they are missing (another Python implementation) the standard
functions are used. The output is the same compact JSON as ``json.dumps(obj,
separators=(",", ":"))``; the parser accepts exactly one JSON value with no surrounding space.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

_standard_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_standard_decode = json.JSONDecoder().decode


def _c_encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _standard_encode
    # markers (None: no circularity check), default, string encoder, indent, key and item
    # separators, sort_keys, skipkeys, allow_nan: as JSONEncoder(separators=(",", ":")) has them
    encoder = make(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
                   ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return encode


def _c_scanner() -> Callable[[str], Any]:
    make = getattr(json.scanner, "c_make_scanner", None)
    if make is None:
        return _standard_decode
    scan = make(json.JSONDecoder())

    def decode(text: str) -> Any:
        try:
            value, end = scan(text, 0)
        except StopIteration as stop:  # the scanner's way of saying "no value here"
            raise json.JSONDecodeError("Expecting value", text, stop.value) from None
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return value

    return decode


dumps = _c_encoder()
loads = _c_scanner()
