"""Audio pipelines on a real cluster: what the recorder writes into the session archive."""

from __future__ import annotations

import numpy as np
import pytest

import chimerapy as cp
from audio_helpers import find_recording, peak_frequency, run_for, sine, write_wav
from chimerapy_nodes_audio import AudioFile, AudioLevel, AudioRecorder, Tone
from support.nodes import Collector, collected

pytestmark = pytest.mark.timeout(120)


def test_tone_level_recorder_writes_a_wav_of_the_tone_duration(cluster, tmp_path):
    manager, (worker,) = cluster("w1")
    rate, duration = 16000, 1.05  # 16800 frames: 16 blocks of 1000 and one of 800
    tone = Tone("tone", frequency=500, samplerate=rate, blocksize=1000, duration=duration)
    level, rec = AudioLevel("level"), AudioRecorder("rec", record_name="tone")
    meter = Collector("meter", tmp_path / "levels")
    graph = cp.Graph()
    graph.add_edges([(tone, level), (level, rec), (level, meter)])
    run_for(manager, graph, {"w1": ["tone", "level", "rec", "meter"]}, seconds=duration + 0.6)
    assert manager.errors == []
    recording = find_recording("rec", "tone", tmp_path, worker.tempdir)
    assert (recording.frames, recording.rate, recording.channels) == (16800, rate, 1)
    assert recording.meta["duration"] == pytest.approx(duration)
    np.testing.assert_allclose(recording.samples[:, 0], sine(500, rate, 16800), atol=1e-6)
    # contiguous blocks: each timestamp is the previous one plus its duration
    indices, times = zip(*recording.blocks)
    assert indices == tuple(range(0, 16800, 1000))
    np.testing.assert_allclose(np.diff(times), 1000 / rate, atol=1e-6)
    levels = [values["level_dbfs"] for _, _, values, _ in collected(tmp_path / "levels")]
    assert len(levels) == 17 and levels == pytest.approx([-9.03] * 17, abs=0.05)


def test_file_recorder_writes_the_file_again(cluster, tmp_path):
    manager, (worker,) = cluster("w1")
    rate = 22050
    pcm = (np.stack([sine(440, rate, 17000), sine(880, rate, 17000, 0.25)], axis=1) * 32767).astype(
        np.int16
    )
    path = write_wav(tmp_path / "clip.wav", pcm, rate)  # 0.77 s, stereo
    player = AudioFile("player", path=str(path), blocksize=2048, dtype="int16")
    rec = AudioRecorder("rec", record_name="copy")
    graph = cp.Graph()
    graph.add_edge(player, rec)
    run_for(manager, graph, {"w1": ["player", "rec"]}, seconds=1.4)
    assert manager.errors == []
    recording = find_recording("rec", "copy", tmp_path, worker.tempdir)
    assert (recording.frames, recording.rate, recording.channels) == (17000, rate, 2)
    assert recording.meta["dtype"] == "int16"
    np.testing.assert_array_equal(recording.samples, pcm / np.float32(32768))
    assert peak_frequency(recording.samples, rate) == pytest.approx(440, abs=2)
