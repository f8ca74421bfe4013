"""Record names: which strings make a portable file name.

A record name becomes part of one or more file names inside the Recorder's directory, and the
archive travels between computers, so a name must be valid on Linux, macOS and Windows alike.
All functions here are pure.
"""

from __future__ import annotations

from chimerapy.errors import RecordError

__all__ = ["MAX_NAME_BYTES", "check_name", "record_error"]

#: Longest name in UTF-8 bytes; leaves room for the longest suffix (``.timestamps.csv``) and the
#: 255-byte limit of common file systems.
MAX_NAME_BYTES = 200

_FORBIDDEN = frozenset('/\\<>:"|?*')
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{i}" for i in range(1, 10)]
    + [f"lpt{i}" for i in range(1, 10)]
)
_FIX = "use letters, digits, '-', '_' and inner '.' (for example 'camera_1')"


def record_error(name: str, message: str) -> RecordError:
    """Build the :class:`RecordError` for record ``name``; the message names the record first."""
    return RecordError(f"record {name!r}: {message}", record=name)


def check_name(name: object) -> str:
    """Return ``name`` if it is a portable file name, else raise.

    Raises:
        RecordError: naming the record and what to change.
    """
    if not isinstance(name, str):
        raise record_error(str(name), f"a record name must be a str, not {type(name).__name__}")
    reason = _problem(name)
    if reason is not None:
        raise record_error(name, f"the name is not a valid file name: {reason}; {_FIX}")
    return name


def _problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return "'.' and '..' name directories"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    bad = sorted({ch for ch in name if ch in _FORBIDDEN or ord(ch) < 32 or ord(ch) == 127})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        return f"it contains {shown} (path separators, control or reserved characters)"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in name):
        return "it contains an unpaired surrogate"
    if name.startswith("."):
        return "it starts with '.' (a hidden file)"
    if name != name.strip() or name.endswith("."):
        return "it starts or ends with white space, or ends with '.'"
    if name.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return "it is a reserved device name on Windows"
    return None
