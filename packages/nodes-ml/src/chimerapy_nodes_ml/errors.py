"""Errors of the ML pack, under ChimeraPy's one exception tree::

    ChimeraPyError
    └── ModelError                          a model that cannot be loaded or run
        ├── ModelFileError(FileNotFoundError)   a missing or unreadable model file (names the path)
        ├── ModelInputError(ValueError)         data that does not fit the model's input
        └── MissingExtraError(ImportError)      an optional dependency that is not installed

Bad option values (a negative threshold, an unknown layout) raise plain :class:`ValueError` when
the node is created.
"""

from __future__ import annotations

from chimerapy import ChimeraPyError

__all__ = ["MissingExtraError", "ModelError", "ModelFileError", "ModelInputError"]


class ModelError(ChimeraPyError):
    """A model that cannot be loaded or run; the message names the model and what to change."""


class ModelFileError(ModelError, FileNotFoundError):
    """A model (or cascade) file that does not exist or cannot be read.

    Attributes:
        path: the path that was looked for.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class ModelInputError(ModelError, ValueError):
    """Data that does not fit the model's input: wrong name, shape, dtype or layout.

    Attributes:
        expected: the model's input, described (name, dtype, shape).
        received: what arrived, described (record, producer, dtype, shape).
    """

    def __init__(self, message: str, *, expected: str, received: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class MissingExtraError(ModelError, ImportError):
    """A node whose optional dependency is not installed; the message says what to install."""
