"""Shared memory for large buffers between node processes on one host.

Set ``CHIMERAPY_SHM=off`` to send every buffer through ZeroMQ instead. A publisher copies each large array once into a slot of its :class:`SlotPool` (files under
``/dev/shm``, mapped); the message carries only a reference to the slot. A consumer maps the
slot and gets a read-only, zero-copy view (:class:`SlotReader`). The slot is reused only when
every consumer has let go of its view: each consumer writes the slot's generation into its own
``seen`` word of the slot header when it maps the buffer and into its ``done`` word when its last
view is garbage collected, so a node that keeps a frame past its step never sees it change.

Each consumer has a budget of slots (:class:`SlotPool`): one that is behind (slots on their
way to it) makes the publisher wait for that edge (backpressure, bounded by the publisher's
stall patience); one that keeps frames (every slot it holds is mapped) gets bytes through
ZeroMQ instead, so keeping frames never stalls the producer; one that stopped reading holds at
most its own budget, never the other consumers' slots.

A producer may also *borrow* a slot before it has a frame (:meth:`SlotPool.lend`): it writes
the frame into the slot's writable view, and sending that view claims the slot for the consumers
in place of the copy (:meth:`SlotPool.claim`). A borrowed slot is the producer's alone until it is
sent or given back (:meth:`SlotPool.give_back`); once sent it follows the same release protocol.
The slot of the producer's last sent frame is kept from reuse (:meth:`SlotPool.keep`), since the
producer itself still refers to that frame.

Slots are reserved with ``posix_fallocate`` when made: a full ``/dev/shm`` (containers default
to 64 MB) refuses there, the pool keeps the slots it has and sends bytes beyond them, and one
warning names the fix. Segment files are created 0600 (only the node's user may map them).

Slot layout: a 256-byte header of uint64 words ``[generation, consumers, done_0 .. done_14,
seen_0 .. seen_14]`` followed by the payload.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import math
import mmap
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SHM_THRESHOLD", "SlotPool", "SlotReader", "remove_orphaned_segments", "remove_segments"]

log = logging.getLogger(__name__)

#: Arrays at least this large travel through shared memory between processes of one host.
SHM_THRESHOLD = 64 * 1024
HEADER = 256
MAX_CONSUMERS = (HEADER // 8 - 2) // 2
_DONE, _SEEN = 2, 2 + MAX_CONSUMERS  # first word of each consumer field
_DIR = "/dev/shm"


def _prefix(pid: int) -> str:
    return os.path.join(_DIR, f"chimerapy-{pid}-")


def remove_segments(pid: int) -> int:
    """Delete the segments a (dead) node process left behind; returns how many."""
    removed = 0
    for path in glob.glob(_prefix(pid) + "*"):
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def remove_orphaned_segments() -> int:
    """Delete this user's segments whose process is gone (nodes killed with their Worker leave
    them behind, and ``/dev/shm`` is memory); returns how many."""
    removed, uid = 0, os.getuid()
    for path in glob.glob(os.path.join(_DIR, "chimerapy-*-*")):
        pid = os.path.basename(path).split("-")[1]
        try:
            if not pid.isdigit() or os.stat(path, follow_symlinks=False).st_uid != uid or _alive(int(pid)):
                continue
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass
class _Slot:
    path: str
    capacity: int
    memory: mmap.mmap
    words: np.ndarray  # the header as uint64
    address: int = 0  # where the payload starts in this process
    lent: bool = False  # borrowed by the producer (see SlotPool.lend), not yet sent
    kept: bool = False  # holds the producer's last sent frame (see SlotPool.keep)

    @property
    def busy(self) -> bool:
        """True while the producer itself uses the slot (borrowed, or its last sent frame)."""
        return self.lent or self.kept


class SlotPool:
    """The publisher's slots, shared by its consumers on this host.

    Each consumer has its own budget of slots: :meth:`held` counts the slots a consumer has not
    let go of, :meth:`behind` says whether some of them are still on their way to it (it is
    slow: the publisher may wait, which is that edge's backpressure) or all mapped (it keeps
    frames: waiting would be pointless, it gets bytes). A message the publisher drops for one
    consumer gives that consumer's claim back (:meth:`release`), so a consumer that stops reading
    holds at most its own budget and never the slots of the others.

    Args:
        consumers: how many consumers read the slots (at most :data:`MAX_CONSUMERS`).
        per_consumer: the most slots one consumer may hold.
        owner: the node's name, for the warning when ``/dev/shm`` is full.
    """

    def __init__(self, consumers: int = 1, *, per_consumer: int = 16, owner: str = "") -> None:
        self.consumers = consumers
        self.per_consumer = per_consumer
        self.max_slots = per_consumer * max(1, consumers)
        self.owner = owner
        self._slots: list[_Slot] = []
        self._lent: dict[int, tuple[_Slot, int, np.ndarray]] = {}  # payload address -> (slot, size, array)
        self._lent_ids: dict[int, int] = {}  # id of the array lend() returned -> payload address
        self._kept: list[_Slot] = []
        self._spare = 2  # slots lend() may add beyond the budgets: one borrowed, one kept
        self._generation = 0
        self.enabled = (os.path.isdir(_DIR) and os.environ.get("CHIMERAPY_SHM", "on") != "off"
                        and 0 < consumers <= MAX_CONSUMERS)
        #: Set once creating a slot failed for lack of room (the reason, as warned).
        self.full: str | None = None

    def held(self, index: int) -> int:
        """How many slots consumer ``index`` has not let go of."""
        return sum(1 for slot in self._slots if _holds(slot.words, index))

    def behind(self, index: int) -> bool:
        """True while a slot is on its way to consumer ``index`` (claimed, not yet mapped)."""
        return any(_holds(slot.words, index, unread=True) for slot in self._slots)

    def full_consumers(self) -> dict[int, bool]:
        """The consumers holding their whole budget, each with whether it is :meth:`behind`.

        One pass over the slot headers, and none while the pool has fewer slots than a budget
        (the common case: nobody can be over it)."""
        if len(self._slots) < self.per_consumer:
            return {}
        held = [0] * self.consumers
        unread = [False] * self.consumers
        for slot in self._slots:
            header = slot.words[: _SEEN + MAX_CONSUMERS].tolist()
            generation, consumers = header[0], header[1]
            if generation == 0:
                continue
            for index in range(min(consumers, self.consumers)):
                if header[_DONE + index] != generation:
                    held[index] += 1
                    unread[index] = unread[index] or header[_SEEN + index] != generation
        return {index: unread[index] for index in range(self.consumers) if held[index] >= self.per_consumer}

    def put(self, array: np.ndarray, holders: Sequence[int], *, grow: bool = True) -> dict | None:
        """Copy ``array`` into a free slot claimed by the consumers ``holders`` (indices); returns
        the reference, or None when no slot is free and the pool may not (or, with ``grow``
        false, shall not) grow, or shared memory is unusable: the caller then sends the bytes
        instead. Never waits."""
        if not self.enabled or not holders:
            return None
        size = array.nbytes
        slot = self._free_slot(size, grow)
        if slot is None:
            return None
        np.frombuffer(slot.memory, np.uint8, size, HEADER)[:] = array.reshape(-1).view(np.uint8)
        return self._hand_over(slot, size, holders)

    def lend(self, dtype: np.dtype, shape: tuple[int, ...], *, grow: bool = True) -> np.ndarray | None:
        """Borrow a free slot for an array of ``dtype`` and ``shape``: returns a writable array
        over the slot, or None when none is free and the pool may not (or, with ``grow`` false,
        shall not) grow, or shared memory is unusable. Never waits.

        The slot stays the producer's until :meth:`claim` sends it or :meth:`give_back` returns it.
        """
        if not self.enabled:
            return None
        size = dtype.itemsize * math.prod(shape)
        slot = self._free_slot(size, grow, spare=self._spare)
        if slot is None:
            return None
        slot.lent = True
        array = np.frombuffer(slot.memory, dtype, size // dtype.itemsize if dtype.itemsize else 0, HEADER)
        array = array.reshape(shape)
        self._lent[slot.address] = (slot, size, array)
        self._lent_ids[id(array)] = slot.address
        return array

    def lent_slot(self, array: np.ndarray) -> _Slot | None:
        """The borrowed slot that ``array`` views whole (same start, same size), if any."""
        if not self._lent:
            return None
        found = self._lent.get(self._lent_ids.get(id(array), -1))
        if found is not None and found[2] is array:  # the array lend() returned: the common case
            return found[0]
        found = self._lent.get(array.__array_interface__["data"][0])
        if found is None or found[1] != array.nbytes or not array.flags.c_contiguous:
            return None
        return found[0]

    def is_lent(self, array: np.ndarray) -> bool:
        """True while ``array`` (as :meth:`lend` returned it) is borrowed."""
        found = self._lent.get(self._lent_ids.get(id(array), -1))
        return found is not None and found[2] is array

    def overlaps_lent(self, array: np.ndarray) -> bool:
        """True when ``array`` lies (even in part) in a borrowed slot."""
        if not self._lent or not array.nbytes:
            return False
        return any(np.may_share_memory(array, view) for _, _, view in self._lent.values())

    @property
    def lending(self) -> bool:
        """True while some slot is borrowed."""
        return bool(self._lent)

    @property
    def keeping(self) -> bool:
        """True while the slot of a frame sent in place is kept (see :meth:`keep`)."""
        return bool(self._kept)

    def claim(self, slot: _Slot, holders: Sequence[int]) -> dict | None:
        """Send the borrowed ``slot`` to the consumers ``holders`` without a copy; returns the
        reference (None, and the slot stays borrowed, when there are no holders)."""
        if not holders:
            return None
        _, size, array = self._lent.pop(slot.address)
        self._lent_ids.pop(id(array), None)
        slot.lent = False
        return self._hand_over(slot, size, holders)

    def give_back(self, array: np.ndarray | None = None) -> None:
        """Return a borrowed slot that was not sent (``array``: its view; None: every one)."""
        if array is None:
            for borrowed, _, _ in self._lent.values():
                borrowed.lent = False
            self._lent.clear()
            self._lent_ids.clear()
            return
        slot = self.lent_slot(array)
        if slot is not None:
            _, _, lent = self._lent.pop(slot.address)
            self._lent_ids.pop(id(lent), None)
            slot.lent = False

    def keep(self, references: Sequence[dict]) -> None:
        """Keep the slots of ``references`` (the producer's last sent frames) from reuse, and
        let go of the ones kept before."""
        for slot in self._kept:
            slot.kept = False
        self._kept = [slot for slot in self._slots for reference in references if slot.path == reference["m"]]
        for slot in self._kept:
            slot.kept = True

    def _hand_over(self, slot: _Slot, size: int, holders: Sequence[int]) -> dict:
        """Publish ``slot`` (its first ``size`` bytes written) to the consumers ``holders``."""
        self._generation += 1
        generation = self._generation
        consumers = self.consumers
        slot.words[1] = consumers
        claimed = set(holders)
        for index in range(consumers):  # the others never get this message: nothing to wait for
            value = 0 if index in claimed else generation
            slot.words[_DONE + index] = value
            slot.words[_SEEN + index] = value
        slot.words[0] = generation
        return {"m": slot.path, "g": generation, "n": size}

    def release(self, reference: dict, index: int) -> None:
        """Give back consumer ``index``'s claim on ``reference`` (its message was dropped)."""
        for slot in self._slots:
            if slot.path == reference["m"] and int(slot.words[0]) == int(reference["g"]):
                slot.words[_SEEN + index] = reference["g"]
                slot.words[_DONE + index] = reference["g"]
                return

    def _free_slot(self, size: int, grow: bool = True, spare: int = 0) -> _Slot | None:
        """The first free slot large enough (low slots stay warm in the caches), a new one while
        the pool may grow (``spare``: slots beyond the consumers' budgets), else None."""
        for slot in self._slots:
            if slot.capacity >= size and not slot.busy and _released(slot.words):
                return slot
        return self._create(size) if grow and len(self._slots) < self.max_slots + spare else None

    def _create(self, size: int) -> _Slot | None:
        capacity = max(size, 1 << 20)
        path = f"{_prefix(os.getpid())}{len(self._slots)}-{os.urandom(3).hex()}"
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            self._no_room(size, error)
            return None
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask: only this user may read frames
            # reserve every page now: a full /dev/shm refuses here instead of killing the
            # process with SIGBUS at the first write into a page it cannot have
            os.posix_fallocate(descriptor, 0, HEADER + capacity)
            memory = mmap.mmap(descriptor, HEADER + capacity)
        except OSError as error:
            os.close(descriptor)
            try:
                os.unlink(path)
            except OSError:
                pass
            self._no_room(size, error)
            return None
        os.close(descriptor)
        slot = _Slot(path, capacity, memory, np.frombuffer(memory, np.uint64, HEADER // 8, 0))
        slot.address = np.frombuffer(memory, np.uint8, 1, HEADER).__array_interface__["data"][0]
        self._slots.append(slot)
        return slot

    def _no_room(self, size: int, error: OSError) -> None:
        """Keep the slots that fit and send bytes beyond them; warn once with the fix."""
        self.max_slots = len(self._slots)
        self._spare = 0
        self.enabled = bool(self._slots)
        if self.full is None:
            self.full = (
                f"node {self.owner}: {_DIR} has no room for a {size / 1e6:.1f} MB shared-memory slot "
                f"({error.strerror or error}); large frames go through ZeroMQ instead (slower). "
                f"Fix: give {_DIR} more room (containers: docker run --shm-size=1g; elsewhere: "
                f"mount -o remount,size=2G {_DIR})"
            )
            log.warning("%s", self.full)

    def close(self) -> None:
        """Delete the slots' files (consumers that still map them keep their views)."""
        for slot in self._slots:
            try:
                os.unlink(slot.path)
            except OSError:
                pass
        self._slots.clear()


class SlotReader:
    """A consumer's side: views of slots, released when the last view is gone.

    Args:
        name: the consumer's name (its index among a slot's consumers comes with each message).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._maps: dict[str, tuple[mmap.mmap, np.ndarray]] = {}

    def view(self, reference: dict, dtype: np.dtype, shape: tuple[int, ...], index: int) -> np.ndarray:
        """A read-only array over the slot ``reference`` (consumer ``index`` of the slot)."""
        if not 0 <= index < MAX_CONSUMERS:
            raise ValueError(f"consumer index {index} outside 0..{MAX_CONSUMERS - 1}")
        memory, words = self._map(str(reference["m"]))
        generation, size = int(reference["g"]), int(reference["n"])
        exporter = (ctypes.c_char * size).from_buffer(memory, HEADER)
        words[_SEEN + index] = generation
        weakref.finalize(exporter, _release, words, index, generation)
        array = np.frombuffer(memoryview(exporter), dtype=dtype).reshape(shape)
        array.flags.writeable = False
        return array

    def _map(self, path: str) -> tuple[mmap.mmap, np.ndarray]:
        if not path.startswith(_DIR + "/chimerapy-") or ".." in path:
            raise ValueError(f"not a ChimeraPy shared-memory segment: {path!r}")
        mapped = self._maps.get(path)
        if mapped is None:
            descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            try:
                memory = mmap.mmap(descriptor, 0)
            finally:
                os.close(descriptor)
            mapped = (memory, np.frombuffer(memory, np.uint64, HEADER // 8, 0))
            self._maps[path] = mapped
        return mapped


def _released(words: np.ndarray) -> bool:
    """True when every consumer of the slot's buffer has let go of it (or it was never used)."""
    header = words[: _SEEN + MAX_CONSUMERS].tolist()
    generation, consumers = header[0], header[1]
    return generation == 0 or header[_DONE : _DONE + consumers].count(generation) == consumers


def _holds(words: np.ndarray, index: int, *, unread: bool = False) -> bool:
    """True while consumer ``index`` holds the slot (with ``unread``: has not even mapped it)."""
    generation = int(words[0])
    if generation == 0 or index >= int(words[1]) or int(words[_DONE + index]) == generation:
        return False
    return not unread or int(words[_SEEN + index]) != generation


def _release(words: np.ndarray, index: int, generation: int) -> None:
    words[_DONE + index] = generation
