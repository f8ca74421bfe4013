"""The errors of the LSL pack; both children of ChimeraPy's one exception tree::

chimerapy.ChimeraPyError
├── LslStreamNotFoundError(LookupError)   no LSL stream matched an inlet's query in time (the
│                                         message lists the streams that were visible)
└── LslFormatError(ValueError)            a value an outlet cannot publish, or one whose channel
                                          count or format differs from the stream's
"""

from __future__ import annotations

from chimerapy import ChimeraPyError

__all__ = ["LslFormatError", "LslStreamNotFoundError"]


class LslStreamNotFoundError(ChimeraPyError, LookupError):
    """No LSL stream matched the query; the message lists the streams that were seen."""


class LslFormatError(ChimeraPyError, ValueError):
    """A value that does not fit the outlet's stream; the message says what was expected."""
