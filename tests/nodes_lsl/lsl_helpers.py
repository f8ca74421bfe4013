"""LSL for the tests: a private liblsl configuration and a synthetic outlet with known samples.

:func:`write_config` writes an ``lsl_api.cfg`` that keeps discovery on this machine (multicast at
machine scope, unicast to the given peers only) under a session id of its own, so that the tests
see only their own streams and connect to them over loopback (or to the given peers). liblsl reads the file named by
``LSLAPICFG`` once per process, at its first use.

:class:`SyntheticOutlet` publishes ``float32(k * channels + c)`` as channel ``c`` of sample ``k``,
stamped ``start + k / rate`` on the outlet's LSL clock: every received sample says which one it
is, and when it was made. Run as a script (``python lsl_helpers.py NAME SECONDS``) it does the
same in its own process (used inside a network namespace) and prints ``start`` and the count.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pylsl

RATE = 1000.0
CHANNELS = 8
PUSH = 10  # samples per push: a 100 Hz schedule of 10-sample chunks


def write_config(folder: Path, *, session: str, peers: tuple[str, ...] = ("127.0.0.1",),
                 listen: str = "127.0.0.1") -> Path:
    """An ``lsl_api.cfg`` (mode 0600) for LSL on this machine and ``peers`` only."""
    path = folder / "lsl_api.cfg"
    path.write_text(
        "[ports]\nIPv6 = disable\n"
        "[multicast]\nResolveScope = machine\nMachineAddresses = {127.0.0.1}\nTTLOverride = 0\n"
        + (f"ListenAddress = {listen}\n" if listen else "")
        + f"[lab]\nSessionID = {session}\nKnownPeers = {{{', '.join(peers)}}}\n"
    )
    path.chmod(0o600)
    return path


def lsl_to_wall() -> float:
    """Seconds from this host's LSL clock to its wall clock (the Manager's clock in the tests):
    the tightest of ten back-to-back readings, so a preemption between two reads cannot skew it."""
    readings = []
    for _ in range(10):
        before = pylsl.local_clock()
        wall = time.time()
        after = pylsl.local_clock()
        readings.append((after - before, wall - (before + after) / 2))
    return min(readings)[1]


def expected_sample(k: np.ndarray, channels: int = CHANNELS) -> np.ndarray:
    """The samples ``k`` (an index array) of a SyntheticOutlet: ``(len(k), channels)`` float32."""
    return (np.asarray(k)[:, None] * channels + np.arange(channels)).astype(np.float32)


def sample_index(samples: np.ndarray, channels: int = CHANNELS) -> np.ndarray:
    """Which sample of a SyntheticOutlet each row of ``samples`` is."""
    return (np.asarray(samples)[:, 0] // channels).astype(np.int64)


class SyntheticOutlet:
    """A regular float32 LSL outlet pushing known samples in real time from a thread.

    :meth:`start` waits for a consumer (so none of the samples is pushed before anyone listens)
    and pushes ``count`` samples at ``rate``; :meth:`join` waits for the last one; :meth:`close`
    destroys the outlet (its inlets see the stream lost).
    """

    def __init__(self, name: str, *, count: int, rate: float = RATE, channels: int = CHANNELS,
                 source_id: str = "", first: int = 0) -> None:
        info = pylsl.StreamInfo(name, "EEG", channels, rate, "float32", source_id)
        info.set_channel_labels([f"C{c}" for c in range(channels)])
        info.set_channel_units(["microvolts"] * channels)
        self.outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(info)
        self.count, self.rate, self.channels, self.first = count, rate, channels, first
        self.start_time: float | None = None  # the LSL time of sample `first`
        self.pushed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, consumer_timeout: float = 30.0) -> None:
        assert self.outlet is not None
        assert self.outlet.wait_for_consumers(consumer_timeout), "no inlet connected to the outlet"
        self.start_time = pylsl.local_clock()
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the outlet pushed {self.pushed} of {self.count} samples"

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.outlet = None  # pylsl destroys the outlet with its last reference

    def times(self, k: np.ndarray) -> np.ndarray:
        """The LSL times the outlet stamped on samples ``k``."""
        assert self.start_time is not None
        return self.start_time + (np.asarray(k) - self.first) / self.rate

    def _run(self) -> None:
        assert self.outlet is not None
        start = self.start_time
        assert start is not None
        while self.pushed < self.count and not self._stop.is_set():
            n = min(PUSH, self.count - self.pushed)
            due = start + (self.pushed + n - 1) / self.rate  # when the chunk's last sample is made
            delay = due - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            k = self.first + self.pushed + np.arange(n)
            self.outlet.push_chunk(expected_sample(k, self.channels), self.times(k).tolist())
            self.pushed += n


if __name__ == "__main__":  # python lsl_helpers.py NAME SECONDS: an outlet in its own process
    name, seconds = sys.argv[1], float(sys.argv[2])
    outlet = SyntheticOutlet(name, count=round(seconds * RATE))
    print("ready", flush=True)
    outlet.start(consumer_timeout=60)
    print(f"start {outlet.start_time!r} offset {lsl_to_wall()!r}", flush=True)
    outlet.join(seconds + 30)
    print(f"pushed {outlet.pushed}", flush=True)
    sys.stdin.read()  # keep the outlet until the test closes our stdin
    os._exit(0)
