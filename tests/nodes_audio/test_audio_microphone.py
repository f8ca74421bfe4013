"""The microphone records a private PulseAudio sine source through sounddevice, in a cluster.

Every node runs in its own process, which inherits the test's environment: ``PULSE_SERVER``
and ``PULSE_CLIENTCONFIG`` point it at the private server (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chimerapy as cp
from audio_helpers import find_recording, peak_frequency, run_for
from chimerapy_nodes_audio import AudioRecorder, Microphone
from audio_pulse import SINE_HZ
from support.nodes import Collector, collected

pytestmark = [pytest.mark.audio, pytest.mark.timeout(120)]


def test_microphones_record_the_sine_source_for_the_time_they_ran(pulse, cluster, tmp_path):
    """The default device (float32 mono) and 'pulse' by name (int16 stereo), side by side."""
    manager, (worker,) = cluster("w1")
    rate, seconds = 48000, 2.0
    mics = {
        "mic": Microphone("mic", samplerate=rate, blocksize=2400),
        "mic2": Microphone(
            "mic2", device="pulse", samplerate=rate, channels=2, blocksize=1024, dtype="int16"
        ),
    }
    graph = cp.Graph()
    for name, mic in mics.items():
        graph.add_edge(mic, AudioRecorder(f"rec_{name}", record_name=name))
    graph.add_edge(mics["mic"], Collector("records", tmp_path / "records"))
    starting, started, stopping = run_for(
        manager, graph, {"w1": [*mics, "rec_mic", "rec_mic2", "records"]}, seconds
    )
    assert manager.errors == []
    for name, mic in mics.items():
        recording = find_recording(f"rec_{name}", name, tmp_path, worker.tempdir)
        assert (recording.rate, recording.channels) == (rate, mic.channels)
        assert recording.meta["dtype"] == mic.dtype
        assert peak_frequency(recording.samples, rate) == pytest.approx(SINE_HZ, abs=1.0)
        # one continuous sine: no sample lost, repeated or out of order anywhere
        assert sine_fit_error(recording.samples[:, -1], SINE_HZ, rate) < 1e-3
        # it starts when the run started and holds (run time x rate) samples, within one block,
        # the run ending when the node was told to stop (Manager-aligned, from its final stats)
        block = mic.blocksize / rate
        start = recording.meta["start_time"]
        assert starting - block <= start <= started + block
        stopped = manager.final_stats[name]["stop_requested_at"]
        assert stopping <= stopped <= stopping + 5.0
        assert (stopped - start - block) * rate <= recording.frames <= (stopped - start + block) * rate
        indices, times = map(np.array, zip(*recording.blocks))
        np.testing.assert_array_equal(indices, np.cumsum([0, *np.diff(indices)]))
        np.testing.assert_allclose(np.diff(times), np.diff(indices) / rate, atol=1e-6)
        assert set(np.diff(indices)[1:-1]) <= {mic.blocksize}  # only the first and last are cut
    got = [values for _, _, values, _ in collected(tmp_path / "records")]
    assert [v["sample_index"] for v in got][1:] == list(
        np.cumsum([len(v["samples"]) for v in got])[:-1]
    )
    assert all(v["overflows"] >= 0 and v["dropped_blocks"] == 0 for v in got)
    assert abs(got[-1]["clock_drift"]) < 0.02  # the sine source is clocked by this host


def sine_fit_error(samples: np.ndarray, frequency: float, rate: int) -> float:
    """RMS of what is left of float ``samples`` after the best fitting sine at ``frequency``."""
    x = samples.astype(np.float64)
    phase = 2 * np.pi * frequency * np.arange(len(x)) / rate
    basis = np.stack([np.sin(phase), np.cos(phase)], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.sqrt(np.mean((x - basis @ coefficients) ** 2)))


def prep_failure(manager: cp.Manager, mic: Microphone) -> str:
    """Commit a graph of ``mic`` alone; returns the traceback of its (expected) failure in prep."""
    graph = cp.Graph()
    graph.add_node(mic)
    with pytest.raises(cp.CommitError) as info:
        manager.commit_graph(graph, {"w1": [mic.name]}, strict=True)
    (error,) = info.value.errors
    assert (error.node, error.phase) == (mic.name, "prep")
    return error.remote_traceback


def test_an_unknown_device_name_fails_the_commit_listing_the_devices(pulse, cluster):
    manager, _ = cluster("w1")
    text = prep_failure(manager, Microphone("mic", device="no-such-microphone"))
    assert "AudioDeviceError: unknown audio input device 'no-such-microphone'" in text
    assert "'pulse'" in text and "'default'" in text


def test_no_input_device_when_the_sound_server_is_stopped(pulse, cluster):
    cards = Path("/proc/asound/cards")
    if cards.exists() and "no soundcards" not in cards.read_text():
        pytest.skip("this machine has sound cards: PortAudio sees their inputs without PulseAudio")
    pulse.stop()
    manager, _ = cluster("w1")
    text = prep_failure(manager, Microphone("mic"))
    assert "AudioDeviceError: no audio input device: PortAudio sees no device with input" in text
