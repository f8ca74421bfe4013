"""Shared memory for large buffers between node processes on one host.

Set ``CHIMERAPY_SHM=off`` to send every buffer through ZeroMQ instead. A publisher copies each large array once into a slot of its :class:`SlotPool` (files under
``/dev/shm``, mapped); the message carries only a reference to the slot. A consumer maps the
slot and gets a read-only, zero-copy view (:class:`SlotReader`). The slot is reused only when
every consumer has let go of its view: each consumer writes the slot's generation into its own
``seen`` word of the slot header when it maps the buffer and into its ``done`` word when its last
view is garbage collected, so a node that keeps a frame past its step never sees it change.

With no free slot the producer waits while some slot is still on its way to a consumer (the
consumer is behind: backpressure, as on any lossless edge); when consumers hold every slot (they
keep frames), or a slot stays unread past the pool's patience (its consumer died), the buffer
travels through ZeroMQ instead, so keeping frames never stalls the producer.

Slot layout: a 256-byte header of uint64 words ``[generation, consumers, done_0 .. done_14,
seen_0 .. seen_14]`` followed by the payload.
"""

from __future__ import annotations

import ctypes
import glob
import mmap
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SHM_THRESHOLD", "SlotPool", "SlotReader", "remove_segments"]

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


@dataclass
class _Slot:
    path: str
    capacity: int
    memory: mmap.mmap
    words: np.ndarray  # the header as uint64


class SlotPool:
    """The publisher's slots.

    Args:
        max_slots: the most slots (buffers in flight).
        patience: the longest wait, in seconds, for a slot that a consumer has yet to read.
    """

    def __init__(self, max_slots: int = 16, patience: float = 1.0) -> None:
        self.max_slots = max_slots
        self.patience = patience
        self._slots: list[_Slot] = []
        self._generation = 0
        self._starved = False  # the last wait ran out: send bytes until a slot is free again
        self.enabled = os.path.isdir(_DIR) and os.environ.get("CHIMERAPY_SHM", "on") != "off"

    def put(self, array: np.ndarray, consumers: int, abort: Callable[[], bool] = lambda: False) -> dict | None:
        """Copy ``array`` into a free slot for ``consumers`` readers; returns the reference, or
        None when consumers hold every slot, the wait for one ran out or ``abort()`` became true,
        or shared memory is unusable: the caller then sends the bytes instead."""
        if not self.enabled or not 0 < consumers <= MAX_CONSUMERS:
            return None
        size = array.nbytes
        slot = self._free_slot(size) or self._wait_for_slot(size, abort)
        self._starved = slot is None
        if slot is None:
            return None
        self._generation += 1
        np.frombuffer(slot.memory, np.uint8, size, HEADER)[:] = array.reshape(-1).view(np.uint8)
        slot.words[1] = consumers
        slot.words[_DONE : _DONE + consumers] = 0
        slot.words[_SEEN : _SEEN + consumers] = 0
        slot.words[0] = self._generation
        return {"m": slot.path, "g": self._generation, "n": size}

    def _free_slot(self, size: int) -> _Slot | None:
        """The first free slot large enough (low slots stay warm in the caches), a new one while
        the pool may grow, else None."""
        for slot in self._slots:
            if slot.capacity >= size and _released(slot.words):
                return slot
        return self._create(size) if len(self._slots) < self.max_slots else None

    def _wait_for_slot(self, size: int, abort: Callable[[], bool]) -> _Slot | None:
        """Wait while a slot is on its way to a consumer that is still reading (backpressure)."""
        if self._starved or not self._slots:
            return None
        deadline, pause = time.monotonic() + self.patience, 0.00002
        while any(_unread(slot.words) for slot in self._slots) and time.monotonic() < deadline and not abort():
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
            slot = self._free_slot(size)
            if slot is not None:
                return slot
        return None

    def _create(self, size: int) -> _Slot | None:
        capacity = max(size, 1 << 20)
        path = f"{_prefix(os.getpid())}{len(self._slots)}-{os.urandom(3).hex()}"
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                os.ftruncate(descriptor, HEADER + capacity)
                memory = mmap.mmap(descriptor, HEADER + capacity)
            finally:
                os.close(descriptor)
        except OSError:
            self.enabled = False  # no room in /dev/shm: send bytes from now on
            return None
        slot = _Slot(path, capacity, memory, np.frombuffer(memory, np.uint64, HEADER // 8, 0))
        self._slots.append(slot)
        return slot

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
            descriptor = os.open(path, os.O_RDWR)
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


def _unread(words: np.ndarray) -> bool:
    """True while some consumer has not yet mapped the slot's buffer (it is on its way)."""
    header = words[: _SEEN + MAX_CONSUMERS].tolist()
    generation, consumers = header[0], header[1]
    return generation != 0 and header[_SEEN : _SEEN + consumers].count(generation) < consumers


def _release(words: np.ndarray, index: int, generation: int) -> None:
    words[_DONE + index] = generation
