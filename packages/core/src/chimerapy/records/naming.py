"""Record names: which strings make a portable file name.

A record name becomes part of one or more file names inside the Recorder's directory, and the
archive travels between computers, so a name follows the name rule of :mod:`chimerapy.names`
and, in addition, is valid on Windows (no reserved device name, no trailing ``.``).
All functions here are pure.
"""

from __future__ import annotations

from chimerapy.errors import RecordError
from chimerapy.names import RULE, name_problem

__all__ = ["check_name", "record_error"]

_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{i}" for i in range(1, 10)]
    + [f"lpt{i}" for i in range(1, 10)]
)


def record_error(name: str, message: str) -> RecordError:
    """Build the :class:`RecordError` for record ``name``; the message names the record first."""
    return RecordError(f"record {name!r}: {message}", record=name)


def check_name(name: object) -> str:
    """Return ``name`` if it follows the name rule and is a portable file name, else raise.

    Raises:
        RecordError: naming the record, the bad character and its position, and the rule.
    """
    if not isinstance(name, str):
        raise record_error(str(name), f"a record name must be a str, not {type(name).__name__}")
    reason = _problem(name)
    if reason is not None:
        raise record_error(name, f"the name is not a valid file name: {reason}; {RULE}")
    return name


def _problem(name: str) -> str | None:
    problem = name_problem(name)
    if problem is not None:
        return problem.reason
    if name.endswith("."):
        return "it ends with '.'"
    if name.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        return "it is a reserved device name on Windows"
    return None
