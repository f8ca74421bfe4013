"""Constant-frame-rate pacing: a video lasts as long as its frames were saved over, within a frame."""

from __future__ import annotations

import csv

import av
import numpy as np
import pytest
from chimerapy.records import Recorder
from chimerapy.records.frame_pacing import FramePacer

T0 = 1_700_000_000.0


def pattern(kind: str, fps: float, rng: np.random.Generator) -> list[float]:
    if kind == "exact":  # at UNIX-time magnitudes, where i / fps is not exact in floating point
        return [T0 + i / fps for i in range(90)]
    if kind == "on-time-with-jitter":
        return [T0 + i / fps + rng.normal(0, 0.05 / fps) for i in range(90)]
    if kind == "slower":
        return list(T0 + np.cumsum(rng.uniform(1.5, 3.0, 40) / fps))
    if kind == "faster":
        return list(T0 + np.cumsum(rng.uniform(0.1, 0.6, 200) / fps))
    # bursts: a pause, then many frames at once
    times, now = [], T0
    for _ in range(8):
        now += rng.uniform(2, 6) / fps
        times += [now + k * 0.001 for k in range(int(rng.integers(1, 6)))]
    return times


@pytest.mark.parametrize("fps", [10, 30, 29.97])
@pytest.mark.parametrize("kind", ["exact", "on-time-with-jitter", "slower", "faster", "bursts"])
def test_duration_is_the_span_of_the_saves_within_one_frame(tmp_path, fps, kind):
    times = sorted(pattern(kind, fps, np.random.default_rng(7)))
    recorder = Recorder(tmp_path)
    for i, when in enumerate(times):
        recorder.save_video("cam", np.full((16, 16, 3), i % 250, np.uint8), fps, timestamp=when, timing="cfr")
    recorder.close()
    with av.open(str(tmp_path / "cam.mp4")) as container:
        stream = container.streams.video[0]
        frames = stream.frames
        assert sum(1 for _ in container.decode(stream)) == frames
    span = times[-1] - times[0]
    assert 0 < frames / fps - span <= 1.001 / fps  # one frame (and float noise)
    with open(tmp_path / "cam.timestamps.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [float(r["timestamp"]) for r in rows] == times  # every save's exact time is kept
    shown = [int(r["frame_index"]) for r in rows if r["frame_index"] != "-1"]
    assert shown[0] == 0 and shown == sorted(set(shown)) and shown[-1] < frames
    for row in rows:  # a shown frame sits within a frame of its own time
        if row["frame_index"] != "-1":
            assert abs(int(row["frame_index"]) / fps - (float(row["timestamp"]) - times[0])) <= 1 / fps
    if kind in ("exact", "on-time-with-jitter"):
        assert len(shown) == len(times) and frames == len(times)  # jitter neither drops nor repeats


def test_pacer_repeats_into_gaps_and_drops_what_comes_too_fast():
    pacer = FramePacer(10)
    assert pacer.place(0.0).index == 0
    late = pacer.place(0.35)
    assert (late.index, late.repeat_previous) == (4, 3)  # slots 1-3 repeat the previous frame
    assert pacer.place(0.36).dropped
    assert (pacer.frames, pacer.repeated, pacer.dropped) == (5, 3, 1)
    assert pacer.place(0.49, last=True).dropped  # a last frame goes to floor(4.9) = 4: taken
    assert pacer.place(0.58, last=True).index == 5  # floor, where round would give 6
