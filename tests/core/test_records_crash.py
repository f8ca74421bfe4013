"""A recording process killed with SIGKILL leaves files that open, up to about a second before."""

from __future__ import annotations

import csv
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import av
import pytest

CORE_SRC = Path(__file__).resolve().parents[2] / "packages" / "core" / "src"
READY_FRAMES = 75  # 2.5 s at 30 fps: mid-GOP, away from a fragment write

RECORDING_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import numpy as np

    from chimerapy.records import Recorder

    recorder = Recorder(Path(sys.argv[1]), flush_interval=0.2)
    y, x = np.mgrid[0:240, 0:320]
    base = ((x + y) % 256).astype(np.uint8)
    block = (np.sin(np.arange(1600) / 5) * 3000).astype(np.int16)
    start = time.monotonic()
    i = 0
    while True:  # real time: 30 fps video, 16 kHz audio in 0.1 s blocks, 10 Hz rows
        time.sleep(max(0.0, start + i / 30 - time.monotonic()))
        recorder.save_video("cam", np.dstack([base, np.roll(base, i, axis=1), base]), 30)
        if i % 3 == 0:
            recorder.save_audio("mic", block, 16000, 1)
            recorder.save_tabular("rows", {"i": i // 3})
        i += 1
        if i == int(sys.argv[2]):
            print("ready", flush=True)
    """
)


@pytest.mark.timeout(90)
def test_sigkill_mid_recording_leaves_readable_files(tmp_path):
    script = tmp_path / "record.py"
    script.write_text(RECORDING_SCRIPT)
    folder = tmp_path / "rec"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CORE_SRC), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(READY_FRAMES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=60), "the recording process never got ready"
        line = process.stdout.readline()
        assert line == b"ready\n", process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()

    # Video: every complete fragment decodes; at most ~1 s (one GOP) plus a flush is lost.
    with av.open(str(folder / "cam.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert READY_FRAMES - 30 - 15 <= frames <= READY_FRAMES + 30
    with open(folder / "cam.timestamps.csv", newline="") as file:
        timestamps = list(csv.reader(file))[1:]
    assert len(timestamps) >= frames  # one row per frame; rows may run ahead of the last fragment

    # Audio: the header was rewritten at the last flush, so the standard reader takes it.
    with wave.open(str(folder / "mic.wav")) as reader:
        assert reader.getframerate() == 16000
        audio_frames = reader.getnframes()
        assert len(reader.readframes(audio_frames)) == 2 * audio_frames
    saved_blocks = READY_FRAMES // 3
    assert (saved_blocks - 10) * 1600 <= audio_frames <= (saved_blocks + 10) * 1600

    with open(folder / "rows.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["timestamp", "i"]
    assert saved_blocks - 10 <= len(rows) - 1 <= saved_blocks + 10
    assert [int(row[1]) for row in rows[1:]] == list(range(len(rows) - 1))
    assert time.time() - float(rows[-1][0]) < 60  # default clock: aligned UNIX seconds
