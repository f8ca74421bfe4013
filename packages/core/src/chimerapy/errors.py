"""The one exception tree of ChimeraPy.

Every error the framework raises derives from :class:`ChimeraPyError`; each child also
inherits the builtin it resembles, so ``except ValueError`` keeps working::

    ChimeraPyError
    ├── GraphError(ValueError)          not a DAG, unknown names, two inputs of one name
    ├── InvalidNameError(ValueError)    a node, Worker, record or session name that breaks the name rule
    ├── MappingError(ValueError)        a mapping that names unknown Workers/Nodes or leaves one out
    ├── ProtocolError(ValueError)       a malformed control or data message
    │   └── UnsendableRecordError       a step output with a record that cannot be serialised
    ├── RecordError(ValueError)         bad input to a ``Node.save_*`` call (names the record)
    ├── RegistryError(LookupError)      an unknown or ambiguous node name in the registry
    ├── NodeError(RuntimeError)         a node raised in prep, step or teardown (remote traceback)
    ├── CommitError(RuntimeError)       ``Manager.commit_graph`` could not set the cluster up
    ├── StateError(RuntimeError)        a call made in the wrong lifecycle state (names the fix)
    ├── AuthenticationError(PermissionError)  a missing or wrong cluster token, a failed pin or proof
    ├── UnsafePathError(PermissionError)      a private folder or file another user could read or plant
    └── WorkerLostError(ConnectionError)      a Worker that stopped answering
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ChimeraPyError",
    "CommitError",
    "GraphError",
    "InvalidNameError",
    "MappingError",
    "NodeError",
    "ProtocolError",
    "RecordError",
    "RegistryError",
    "StateError",
    "UnsafePathError",
    "UnsendableRecordError",
    "WorkerLostError",
]


class ChimeraPyError(Exception):
    """Root of every error raised by ChimeraPy."""


class GraphError(ChimeraPyError, ValueError):
    """The graph is not a valid pipeline (a cycle, an unknown or shared node name, two inputs of one name)."""


class InvalidNameError(ChimeraPyError, ValueError):
    """A name that breaks the rule of :mod:`chimerapy.names`.

    Attributes:
        kind: what was being named (``"node"``, ``"Worker"``, ``"record"``, ``"session"``).
        value: the refused name.
        position: the index of the first offending character (``None`` for a length problem).
    """

    def __init__(self, message: str, *, kind: str, value: object, position: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value
        self.position = position


class MappingError(ChimeraPyError, ValueError):
    """The Worker-to-Node mapping does not fit the graph or the connected Workers."""


class ProtocolError(ChimeraPyError, ValueError):
    """A control or data message that does not follow the wire format."""


class UnsendableRecordError(ProtocolError):
    """A chunk holds a record the wire cannot carry (a lock, a generator, an open file ...).

    Attributes:
        record: the record's name.
        reason: why it cannot be serialised.
    """

    def __init__(self, message: str, *, record: str, reason: str) -> None:
        super().__init__(message)
        self.record = record
        self.reason = reason


class RecordError(ChimeraPyError, ValueError):
    """Bad input to a ``Node.save_*`` call.

    Attributes:
        record: the record name the call was made with.
    """

    def __init__(self, message: str, *, record: str) -> None:
        super().__init__(message)
        self.record = record


class RegistryError(ChimeraPyError, LookupError):
    """A registry name that is unknown, ambiguous, or whose pack fails to import."""


class NodeError(ChimeraPyError, RuntimeError):
    """A node raised inside its own process.

    Attributes:
        node: the node's name.
        phase: where it raised: ``"prep"``, ``"step"``, ``"teardown"``, ``"load"`` or ``"process"``.
        worker: the name of the Worker hosting the node, when known.
        remote_traceback: the formatted traceback from the node's process.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str,
        phase: str,
        worker: str | None = None,
        remote_traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.node = node
        self.phase = phase
        self.worker = worker
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text


class CommitError(ChimeraPyError, RuntimeError):
    """``commit_graph`` failed; ``errors`` holds the :class:`NodeError` of each failing node."""

    def __init__(self, message: str, *, errors: list[NodeError] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])

    def __str__(self) -> str:
        text = super().__str__()
        for error in self.errors:
            text += f"\n\n--- {error.node} ({error.phase}, worker {error.worker}) ---\n{error}"
        return text


class StateError(ChimeraPyError, RuntimeError):
    """A method was called in a lifecycle state where it cannot run."""


class AuthenticationError(ChimeraPyError, PermissionError):
    """A peer presented no cluster token, or the wrong one."""


class UnsafePathError(ChimeraPyError, PermissionError):
    """A folder or file meant to be private exists with another owner or wider permissions.

    Attributes:
        path: the offending path.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class WorkerLostError(ChimeraPyError, ConnectionError):
    """A Worker stopped answering.

    Attributes:
        worker: the name of the lost Worker.
    """

    def __init__(self, message: str, *, worker: str) -> None:
        super().__init__(message)
        self.worker = worker
