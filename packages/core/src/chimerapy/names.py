"""The one rule for the names of nodes, Workers, records and sessions.

A name becomes part of file and folder names (``<session>/<worker>/<node>/<record>.csv``), of
log lines and of URLs, so every name that enters ChimeraPy follows one rule:

    letters, digits, ``-``, ``_`` and ``.``; not starting with ``.``; 1 to 64 characters.

Letters are those Python's ``str.isalpha`` accepts (``"Kamera"``, ``"名前"``); digits are
``0``-``9``. So a name can never hold a path separator, ``..`` as a whole component, white
space, a control character (no forged log lines) or a NUL. The functions here are pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidNameError

__all__ = ["MAX_NAME_LENGTH", "RULE", "NameProblem", "check_name", "is_valid_name", "name_problem"]

#: The longest name, in characters.
MAX_NAME_LENGTH = 64
#: The rule, as error messages state it.
RULE = (f"a name holds letters, digits, '-', '_' and '.', does not start with '.', "
        f"and has 1 to {MAX_NAME_LENGTH} characters (for example 'camera_1' or 'lab-pc')")
_PUNCTUATION = frozenset("-_.")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class NameProblem:
    """Why a name breaks the rule: ``reason``, and the offending ``position`` if one character."""

    reason: str
    position: int | None = None


def _allowed(character: str) -> bool:
    return character in _DIGITS or character in _PUNCTUATION or character.isalpha()


def name_problem(value: object) -> NameProblem | None:
    """The first way ``value`` breaks the rule, or ``None`` if it is a valid name."""
    if not isinstance(value, str):
        return NameProblem(f"it is a {type(value).__name__}, not a str")
    if not value:
        return NameProblem("it is empty")
    if len(value) > MAX_NAME_LENGTH:
        return NameProblem(f"it has {len(value)} characters, more than {MAX_NAME_LENGTH}")
    for position, character in enumerate(value):
        if not _allowed(character):
            return NameProblem(f"it holds {_describe(character)} at position {position}", position)
    if value.startswith("."):
        return NameProblem("it starts with '.' (position 0)", 0)
    return None


def is_valid_name(value: object) -> bool:
    """Whether ``value`` follows the rule."""
    return name_problem(value) is None


def check_name(kind: str, value: object) -> str:
    """Return ``value`` if it follows the rule, else raise.

    Args:
        kind: what is named, for the message: ``"node"``, ``"Worker"``, ``"record"``, ``"session"``.
        value: the name to check.

    Raises:
        InvalidNameError: naming the bad character, its position and the rule.
    """
    problem = name_problem(value)
    if problem is None:
        return value  # type: ignore[return-value]  # name_problem checked it is a str
    raise InvalidNameError(f"{kind} name {_shown(value)} is refused: {problem.reason}; {RULE}",
                           kind=kind, value=value, position=problem.position)


def _describe(character: str) -> str:
    """A character as an error message shows it: printable ones quoted, others by code point."""
    names = {"/": "a '/' (path separator)", "\\": "a '\\' (path separator)", " ": "a space",
             "\x00": "a NUL character", "\n": "a newline", "\r": "a carriage return", "\t": "a tab"}
    if character in names:
        return names[character]
    if character.isprintable():
        return f"the character {character!r} (U+{ord(character):04X})"
    return f"the control character U+{ord(character):04X}"


def _shown(value: object) -> str:
    """``value`` for a message: repr'd (so control characters cannot forge lines), cut if long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"...' ({len(str(value))} characters)"
