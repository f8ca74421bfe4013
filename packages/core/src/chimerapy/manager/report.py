"""The session report: what ended well and every fault, so that no loss is ever silent.

Each fault names what it hit (Worker, node, record or file), when (Manager time) and whether
data was lost. :meth:`Manager.stop` and :meth:`Manager.collect` return a :class:`SessionReport`;
``meta.json`` holds the same under ``"faults"``, ``"collected"`` and ``"complete"``.

Fault kinds:

    killed_at_stop      a node did not stop within its grace period and was ended (data lost:
                        what it had not yet written)
    record_failed       a record's writer failed (a full disk: ``disk_full``); later saves lost
    disk_full           no space left: a record on a Worker, or a file or meta.json on the Manager
    torn_row            a CSV/JSON Lines file ended in a partial row, cut off before archiving
    partial_file        a half-written temporary file (``.tmp``/``.part``) left out of the archive
    missing_file        a file that could not be collected
    worker_lost         a Worker stopped answering; ``data_lost`` says whether its nodes kept
                        running (nothing lost) or ended before the session did
    node_crashed        a node's process died (its recording ends there)
    unsendable_output   step outputs dropped because a record could not be serialised
    meta_not_written    meta.json could not be written (the report still holds everything)

``bool(report)`` says that nothing failed so far: every node stopped when asked, every file
collected arrived intact, and no fault lost data. This keeps ``if manager.stop(collect=False):``
meaning what it did. :attr:`SessionReport.complete` (what ``meta.json`` and the dashboard show)
also needs every Worker's recordings collected: a session stopped and not yet collected is
never "complete".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Fault", "FaultLog", "SessionReport", "merge_collected"]

#: Phases of a node error and the fault kind each becomes.
_PHASE_KINDS = {"record": "record_failed", "send": "unsendable_output", "process": "node_crashed"}
#: Faults of a file that a later collect can still bring.
_RECOVERABLE = frozenset({"disk_full", "missing_file"})
_DISK_FULL = ("No space left on device", "ENOSPC", "Disk quota exceeded")


@dataclass
class Fault:
    """One thing that went wrong in a session."""

    kind: str
    message: str
    worker: str | None = None
    node: str | None = None
    record: str | None = None
    path: str | None = None
    time: float | None = None
    data_lost: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)

    def key(self) -> tuple:
        """What makes two reports of the same fault the same (for merging)."""
        return (self.kind, self.worker, self.node, self.record, self.path)


class FaultLog:
    """The faults of one session as they happen (thread-safe enough: appends only)."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self.faults: list[Fault] = list(faults)

    def add(self, fault: Fault, *, update: bool = False) -> None:
        """Record ``fault`` once; a repeated report of it is ignored, or (``update``) replaces
        the first one's message."""
        if fault.time is None:
            fault.time = time.time()
        for known in self.faults:
            if known.key() == fault.key():
                if update:
                    known.message = fault.message
                return
        self.faults.append(fault)

    def node_error(self, *, worker: str, node: str, phase: str, text: str) -> None:
        """A node error that is also a fault (records, unsendable outputs, crashes)."""
        kind = _PHASE_KINDS.get(phase)
        if kind is None:
            return
        first_line = text.strip().splitlines()[-1] if text.strip() else phase
        if kind == "record_failed" and any(mark in text for mark in _DISK_FULL):
            kind = "disk_full"
        record = _record_of(text) if kind in ("record_failed", "disk_full", "unsendable_output") else None
        if kind == "unsendable_output":  # one fault per record, however many outputs it cost
            self.add(Fault(kind, f"outputs of node {node!r} were dropped: record {record!r} cannot be sent",
                           worker=worker, node=node, record=record, data_lost=False))
            return
        self.add(Fault(kind, first_line, worker=worker, node=node, record=record, data_lost=kind != "node_crashed"))

    def worker_lost(self, worker: str, nodes: list[str], *, state: str) -> None:
        """``worker`` stopped answering while the cluster was ``state``."""
        self.add(Fault("worker_lost", f"Worker {worker!r} stopped answering while the cluster was {state}; the data "
                                      f"of its nodes {sorted(nodes)} since then is missing unless it comes back",
                       worker=worker))

    def worker_back(self, worker: str, *, lost_at: float, placed: list[str], running: list[str]) -> Fault:
        """``worker`` is back; its fault says for how long it was away and whether data was lost
        (its nodes ``placed`` all still ``running``: nothing was)."""
        back_at = time.time()
        kept = sorted(running) == sorted(placed)
        since = time.strftime("%H:%M:%S", time.localtime(lost_at))
        when = f"from {since} to {time.strftime('%H:%M:%S', time.localtime(back_at))} ({back_at - lost_at:.1f} s)"
        message = (f"Worker {worker!r} was lost {when}; its nodes kept running, nothing was lost" if kept else
                   f"Worker {worker!r} was lost {when}; of its nodes {sorted(placed)} only {sorted(running)} were "
                   f"still running: the others' data after {since} is missing")
        fault = Fault("worker_lost", message, worker=worker, time=lost_at, data_lost=not kept)
        self.add(fault, update=True)
        for known in self.faults:
            if known.key() == fault.key():
                known.data_lost = not kept
                return known
        return fault

    def stop_replies(self, nodes: Mapping[str, Mapping[str, Any]], *, worker: str) -> None:
        """Faults in a Worker's answer to ``stop``: nodes it had to kill, outputs dropped."""
        for name, info in nodes.items():
            killed = info.get("killed")
            if killed:
                self.add(Fault("killed_at_stop", f"node {name!r} {killed}; what it had not written is lost",
                               worker=worker, node=name, time=info.get("ended_at")))
            stats = info.get("stats") or {}
            for record, reason in (stats.get("dropped_records") or {}).items():
                self.add(Fault("unsendable_output", f"{stats.get('dropped_outputs', '?')} output(s) of node {name!r} "
                                                    f"were dropped: record {record!r}: {reason}",
                               worker=worker, node=name, record=record, data_lost=False), update=True)

    def deliveries(self, edges: Iterable[tuple[str, str, str]], stats: Mapping[str, Mapping[str, Any]],
                   placement: Mapping[str, str]) -> None:
        """Lossless edges (``(producer, input name, consumer)``) whose consumer did not receive
        every chunk its producer sent: gaps, and a tail cut off before the end of the stream."""
        shortfalls: dict[str, list[str]] = {}
        for producer, input_name, consumer in edges:
            sent = (stats.get(producer) or {}).get("outputs")
            edge = ((stats.get(consumer) or {}).get("inputs") or {}).get(input_name)
            if sent is None or edge is None:
                continue  # a node that crashed or was lost: reported as such
            missing = int(edge.get("lost", 0))
            if not edge.get("ended") and not edge.get("restarts"):
                missing = max(missing, sent - int(edge.get("received", 0)))
            if missing > 0:
                shortfalls.setdefault(consumer, []).append(f"{missing} of the {sent} chunks of {producer!r}")
        for consumer, what in shortfalls.items():
            self.add(Fault("chunks_lost", f"node {consumer!r} did not receive {'; '.join(what)}",
                           worker=placement.get(consumer), node=consumer), update=True)

    def arrived(self, worker: str, paths: Iterable[str]) -> None:
        """Files of ``worker`` that a later collect brought: their earlier faults lost nothing."""
        arrived = set(paths)
        for fault in self.faults:
            if fault.worker == worker and fault.kind in _RECOVERABLE and fault.path in arrived and fault.data_lost:
                fault.data_lost = False
                fault.message += "; collected on a later attempt"

    def collection(self, worker: str, problems: Iterable[Mapping[str, Any]]) -> None:
        """Faults found while collecting from ``worker`` (torn rows, partial or missing files)."""
        for problem in problems:
            self.add(Fault(str(problem["kind"]), str(problem["message"]), worker=worker,
                           node=problem.get("node"), path=problem.get("path"),
                           data_lost=bool(problem.get("data_lost", True))))


def merge_collected(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """One Worker's entry in ``meta.json["collected"]`` after another collect (never overwritten).

    Files and bytes add up; a file missing before and listed again now is no longer missing; an
    attempt that could not reach the Worker keeps what earlier attempts collected. ``new`` may
    carry ``listed`` (every path the Worker listed this time); it is used, not stored.
    """
    if not previous:
        return {**{k: v for k, v in new.items() if k != "listed"}, "attempts": 1}
    listed = set(new.get("listed", ()))
    missing = sorted((set(previous.get("missing", ())) - listed) | set(new.get("missing", ())))
    if new.get("error") is None or (not missing and previous.get("error") is None):
        error = None  # this attempt reached the Worker, or everything had arrived before
    else:
        error = new.get("error")
    merged = {
        "files": int(previous.get("files", 0)) + int(new.get("files", 0)),
        "bytes": int(previous.get("bytes", 0)) + int(new.get("bytes", 0)),
        "retries": int(previous.get("retries", 0)) + int(new.get("retries", 0)),
        "missing": missing,
        "error": error,
        "attempts": int(previous.get("attempts", 1)) + 1,
    }
    merged["complete"] = merged["error"] is None and not merged["missing"]
    return merged


@dataclass
class SessionReport:
    """How a session ended: stop, collection and every fault. Truthy when nothing was lost.

    Attributes:
        session: the session id.
        stopped: every node stopped when asked (none had to be killed, every Worker answered).
        collected: Worker name -> its (merged) collection entry, as in ``meta.json``.
        faults: every fault of the session.
        errors: node errors (node, phase, Worker, traceback), as in ``Manager.status()``.
        uncollected: the session's Workers whose recordings were not collected yet.
    """

    session: str
    stopped: bool = True
    collected: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    uncollected: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every node stopped in time, every Worker's files were collected and arrived intact,
        and no fault lost data."""
        return bool(self) and not self.uncollected

    def __bool__(self) -> bool:
        """Nothing failed so far (files not collected yet are not a failure)."""
        return (self.stopped and all(item.get("complete") for item in self.collected.values())
                and not any(fault.data_lost for fault in self.faults))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"session": self.session, "complete": self.complete, "stopped": self.stopped,
                "collected": self.collected, "uncollected": self.uncollected,
                "faults": [fault.as_dict() for fault in self.faults], "errors": self.errors}

    # dict-like access to the per-Worker collection, as ``Manager.collect()`` returned before
    def __getitem__(self, worker: str) -> dict[str, Any]:
        return self.collected[worker]

    def __contains__(self, worker: object) -> bool:
        return worker in self.collected

    def __iter__(self):
        return iter(self.collected)

    def items(self):
        return self.collected.items()

    def values(self):
        return self.collected.values()

    def keys(self):
        return self.collected.keys()

    def __str__(self) -> str:
        verdict = "complete" if self.complete else "not collected yet" if self else "INCOMPLETE"
        lines = [f"session {self.session}: {verdict}"]
        if self.uncollected:
            lines.append(f"  not collected yet from Worker(s) {', '.join(self.uncollected)}: call collect()")
        if not self.stopped:
            lines.append("  not every node stopped when asked")
        for worker, item in sorted(self.collected.items()):
            state = "complete" if item.get("complete") else f"incomplete: {item.get('error') or ''} missing {item.get('missing')}"
            lines.append(f"  Worker {worker}: {item.get('files', 0)} files, {item.get('bytes', 0)} bytes, {state}")
        for fault in self.faults:
            when = time.strftime("%H:%M:%S", time.localtime(fault.time)) if fault.time else "?"
            lost = "data lost" if fault.data_lost else "nothing lost"
            lines.append(f"  {when} {fault.kind} ({lost}): {fault.message}")
        return "\n".join(lines)


def _record_of(text: str) -> str | None:
    """The record a recorder or send error names (``record 'x': ...``)."""
    marker = "record '"
    start = text.find(marker)
    if start < 0:
        return None
    end = text.find("'", start + len(marker))
    return text[start + len(marker):end] if end > start else None
