"""Archive benchmark: open a long session, read every stream's times, seek frames, export.

    python -m benchmarks.archive                 # a 10-minute 30 fps 640x480 session
    python -m benchmarks.archive --minutes 1     # quicker
    python -m benchmarks.archive --session runs/<session>   # an existing session

A synthetic session is written straight with the recorder classes (``chimerapy.records``):
one Worker with a camera node (H.264 640x480 at 30 fps plus a table row per frame), a
microphone node (16 kHz mono in 1024-sample blocks) and an events node (JSON and text once a
second). Targets (issue 16): open and read every stream's times in under 1 s; a random
``frame_at`` in under 50 ms; each export faster than real time. Not a timed test: it prints.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

BASE_TIME = 1.8e9


def make_session(root: Path, minutes: float) -> Path:
    """Write a synthetic session of ``minutes`` under ``root``; returns its folder."""
    import logging

    import numpy as np
    from chimerapy.records import Recorder

    logging.getLogger("chimerapy.records").setLevel(logging.ERROR)  # the encoder is the bottleneck here
    folder = root / "20260101-000000-bench0"
    frames = int(minutes * 60 * 30)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :, 1] = np.linspace(0, 255, 640, dtype=np.uint8)
    camera = Recorder(folder / "lab" / "camera")
    mic = Recorder(folder / "lab" / "mic")
    events = Recorder(folder / "lab" / "events")
    samples_written = 0
    for i in range(frames):
        t = BASE_TIME + i / 30
        frame[200:280, :] = 0
        frame[200:280, (i * 7) % 560 : (i * 7) % 560 + 80] = 255
        camera.save_video("frames", frame, 30, timestamp=t)
        camera.save_tabular("pose", {"x": np.sin(i / 30), "y": np.cos(i / 30), "frame": i}, timestamp=t)
        while samples_written + 1024 <= (i + 1) * 16000 / 30:
            block = (0.1 * np.sin(np.arange(samples_written, samples_written + 1024) / 10)).astype(np.float32)
            mic.save_audio("mic", block, 16000, 1, timestamp=BASE_TIME + samples_written / 16000)
            samples_written += 1024
        if i % 30 == 0:
            events.save_json("events", {"second": i // 30, "label": "tick"}, timestamp=t)
            events.save_text("notes", f"second {i // 30}\n", timestamp=t)
        while camera.stats()["frames"]["backlog"] > 30:  # keep memory bounded
            time.sleep(0.005)
    for recorder in (camera, mic, events):
        recorder.close(timeout=600)
    end = BASE_TIME + frames / 30
    meta = {"session": folder.name, "created": BASE_TIME - 1, "start_time": BASE_TIME, "stop_time": end,
            "clock_offsets": {"lab": {"offset": 0.0002, "uncertainty": 0.0001,
                                      "history": [[BASE_TIME + s, 0.0002, 0.0001] for s in range(0, int(end - BASE_TIME), 5)]}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def run(folder: Path) -> dict[str, float]:
    """Measure the archive on ``folder``; prints and returns the figures."""
    from chimerapy.archive import open_session
    from chimerapy.archive.export_mcap import export_mcap
    from chimerapy.archive.export_xdf import export_xdf

    figures: dict[str, float] = {}
    began = time.perf_counter()
    session = open_session(folder)
    items = sum(len(stream.times) for stream in session.streams)
    figures["open_and_times_s"] = time.perf_counter() - began
    duration = session.end - session.start
    figures["session_s"] = duration
    print(f"session {folder}: {len(session.streams)} streams, {items} items, {duration:.0f} s")
    print(f"open + every stream's times: {figures['open_and_times_s'] * 1000:.0f} ms (target < 1000 ms)")

    video = next(s for s in session.streams if s.kind == "video")
    began = time.perf_counter()
    video.frame(0)
    figures["first_frame_s"] = time.perf_counter() - began
    rng = random.Random(1)
    latencies = []
    for _ in range(50):
        t = rng.uniform(video.start, video.end)
        began = time.perf_counter()
        video.frame_at(t)
        latencies.append(time.perf_counter() - began)
    figures["frame_at_median_s"] = statistics.median(latencies)
    figures["frame_at_max_s"] = max(latencies)
    print(f"first frame (opens the decoder): {figures['first_frame_s'] * 1000:.0f} ms")
    print(f"random frame_at: median {figures['frame_at_median_s'] * 1000:.1f} ms, "
          f"max {figures['frame_at_max_s'] * 1000:.1f} ms over 50 (target < 50 ms)")

    with tempfile.TemporaryDirectory() as scratch:
        for name, export in (("xdf", export_xdf), ("mcap", export_mcap)):
            began = time.perf_counter()
            target = export(session, Path(scratch) / f"session.{name}")
            spent = time.perf_counter() - began
            figures[f"export_{name}_s"] = spent
            print(f"export {name}: {spent:.1f} s for {duration:.0f} s of recording "
                  f"({duration / spent:.1f}x real time; {target.stat().st_size / 2**20:.0f} MiB)")
    session.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.archive", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic session")
    parser.add_argument("--session", type=Path, default=None, help="measure an existing session instead")
    parser.add_argument("--keep", type=Path, default=None, help="write the synthetic session here and keep it")
    args = parser.parse_args(argv)
    if args.session is not None:
        run(args.session)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        began = time.perf_counter()
        folder = make_session(root, args.minutes)
        print(f"wrote a {args.minutes:g}-minute session in {time.perf_counter() - began:.0f} s")
        run(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
