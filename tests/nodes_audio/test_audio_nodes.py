"""Each node in this process through chimerapy.testing: records, timing, pacing, files, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import chimerapy as cp
from audio_helpers import Recording, peak_frequency, sine, write_wav
from chimerapy.testing import NodeHarness, run_node
from chimerapy_nodes_audio import AudioBlock, AudioFile, AudioLevel, AudioRecorder, Tone

pytestmark = pytest.mark.timeout(60)


def blocks_of(chunks: list[cp.DataChunk]) -> list[AudioBlock]:
    return [AudioBlock.from_chunk(chunk) for chunk in chunks]


def assert_contiguous(blocks: list[AudioBlock]) -> None:
    """sample_index starts at 0 and timestamps advance by exactly each block's duration."""
    assert blocks[0].sample_index == 0
    for before, after in zip(blocks, blocks[1:]):
        assert after.sample_index == before.sample_index + before.frames
        assert after.timestamp - before.timestamp == pytest.approx(
            before.frames / before.rate, abs=1e-6
        )


# -- tone --------------------------------------------------------------------------------------


def test_tone_is_a_phase_continuous_sine_of_exactly_its_duration():
    chunks = run_node(
        Tone(frequency=1000, samplerate=16000, blocksize=300, duration=0.1, realtime=False), steps=8
    )
    blocks = blocks_of(chunks)
    assert [b.frames for b in blocks] == [300] * 5 + [100]  # 1600 frames, the last block shortened
    assert_contiguous(blocks)
    samples = np.concatenate([b.samples for b in blocks])
    assert samples.dtype == np.float32 and samples.shape == (1600, 1)
    np.testing.assert_allclose(samples[:, 0], sine(1000, 16000, 1600), atol=1e-6)
    assert all(isinstance(c.get("clock_drift")["value"], float) for c in chunks)


def test_tone_int16_stereo_and_seeded_noise():
    (block,) = blocks_of(
        run_node(Tone(dtype="int16", channels=2, amplitude=1.0, realtime=False), steps=1)
    )
    assert block.samples.dtype == np.int16 and block.samples.shape == (1024, 2)
    assert block.samples.max() == 32767 and np.array_equal(block.samples[:, 0], block.samples[:, 1])
    assert abs(peak_frequency(block.samples, 48000) - 440) < 48000 / 1024
    noise = [
        blocks_of(run_node(Tone(waveform="noise", seed=7, amplitude=0.1, realtime=False), steps=2))
        for _ in range(2)
    ]
    np.testing.assert_array_equal(noise[0][1].samples, noise[1][1].samples)
    assert np.std(noise[0][1].samples) == pytest.approx(0.1, rel=0.15)


def test_tone_options_are_checked():
    with pytest.raises(ValueError, match="waveform must be one of"):
        Tone(waveform="square")
    with pytest.raises(ValueError, match="amplitude must be in"):
        Tone(amplitude=2)
    with pytest.raises(ValueError, match="dtype must be one of"):
        Tone(dtype="float64")


def test_tone_keeps_an_absolute_schedule_whatever_the_work_between_steps():
    """20 blocks of 20 ms with 10 ms of other work after each still take 0.4 s, not 0.6 s."""
    block, count = 0.02, 20
    with NodeHarness(Tone(samplerate=8000, blocksize=int(8000 * block))) as harness:
        begin = time.monotonic()
        released = []
        for _ in range(count):
            harness.step()
            released.append(time.monotonic() - begin)
            time.sleep(block / 2)
    # block k is released when its last sample is due: (k + 1) * block after the start
    lateness = [at - (k + 1) * block for k, at in enumerate(released)]
    assert max(lateness) < 0.05 and min(lateness) > -0.002, (
        lateness
    )  # sleeping after work: 0.2 s late


def test_tone_stops_promptly_while_waiting_for_a_long_block():
    with NodeHarness(Tone(samplerate=1000, blocksize=10_000)) as harness:  # a 10 s block
        threading.Timer(0.2, harness.runtime.request_stop).start()
        begin = time.monotonic()
        assert harness.step() is None
        assert time.monotonic() - begin < 0.45


# -- file --------------------------------------------------------------------------------------


@pytest.fixture
def stereo_wav(tmp_path):
    pcm = (np.stack([sine(300, 11025, 2500), sine(600, 11025, 2500)], axis=1) * 32767).astype(
        np.int16
    )
    return write_wav(tmp_path / "clip.wav", pcm, 11025), pcm


def test_file_plays_every_frame_in_blocks_then_idles(stereo_wav):
    path, pcm = stereo_wav
    node = AudioFile(path=str(path), blocksize=1000, dtype="int16", realtime=False)
    blocks = blocks_of(run_node(node, steps=6))
    assert [b.frames for b in blocks] == [1000, 1000, 500]
    assert {(b.rate, b.channels) for b in blocks} == {(11025, 2)}
    assert_contiguous(blocks)
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), pcm)  # bit-exact


def test_file_loops_as_one_continuous_stream(stereo_wav):
    path, pcm = stereo_wav
    blocks = blocks_of(
        run_node(AudioFile(path=str(path), blocksize=1000, loop=True, realtime=False), steps=7)
    )
    assert [b.frames for b in blocks] == [1000, 1000, 500] * 2 + [1000]
    assert_contiguous(blocks)
    samples = np.concatenate([b.samples for b in blocks])
    np.testing.assert_array_equal(samples[2500:5000], pcm / np.float32(32768))


def test_file_is_paced_in_real_time(stereo_wav):
    path, _ = stereo_wav  # 2500 frames at 11025 Hz: 0.227 s
    begin = time.monotonic()
    run_node(AudioFile(path=str(path), blocksize=500), steps=5)
    assert 0.2 < time.monotonic() - begin < 0.4


def test_a_missing_file_fails_prep_naming_it(tmp_path):
    with pytest.raises(cp.NodeError) as info:
        run_node(AudioFile("player", path=str(tmp_path / "nope.wav")), steps=1)
    assert info.value.phase == "prep" and "nope.wav" in info.value.remote_traceback
    assert "AudioFileError" in info.value.remote_traceback
    with pytest.raises(ValueError, match="needs path="):
        AudioFile()


# -- level -------------------------------------------------------------------------------------


def _audio(samples: np.ndarray, rate: int = 8000) -> cp.DataChunk:
    samples = samples.reshape(len(samples), -1)
    return AudioBlock(samples, rate, samples.shape[1], 10.0, 0).to_chunk()


def test_level_reads_rms_and_peak_in_dbfs_with_a_floor_for_silence():
    square = np.where(np.arange(800) % 20 < 10, 0.5, -0.5).astype(np.float32)
    inputs = [
        {"tone": _audio(sine(100, 8000, 8000, amplitude=1.0).astype(np.float32))},
        {"tone": _audio(square)},
        {"tone": _audio(np.zeros((400, 2), np.float32))},
        {"tone": _audio(np.full(100, -32768, np.int16))},
    ]
    out = run_node(AudioLevel(floor_dbfs=-100), inputs=inputs)
    levels = [c.get("level_dbfs")["value"] for c in out]
    peaks = [c.get("peak_dbfs")["value"] for c in out]
    assert levels == pytest.approx([-3.0103, -6.0206, -100.0, 0.0], abs=1e-3)
    assert peaks == pytest.approx([0.0, -6.0206, -100.0, 0.0], abs=1e-3)
    assert out[0].get("timestamp")["value"] == 10.0 and out[0].get("duration")["value"] == 1.0
    np.testing.assert_array_equal(out[1].get("samples")["value"][:, 0], square)  # passed through


def test_level_without_passthrough_emits_only_the_meter_records():
    (out,) = run_node(
        AudioLevel(passthrough=False), inputs=[{"x": _audio(np.zeros(10, np.float32))}]
    )
    assert out.keys() == ["timestamp", "level_dbfs", "peak_dbfs", "duration"]
    assert out.get("level_dbfs")["value"] == -120.0
    assert run_node(AudioLevel(), inputs=[{"x": {"level_dbfs": 1.0}}]) == []  # no audio input


# -- recorder ----------------------------------------------------------------------------------


def test_recorder_takes_its_former_option_name_with_a_warning():
    with pytest.warns(DeprecationWarning, match="'record' is now called 'record_name'"):
        recorder = AudioRecorder(record="voice")
    assert recorder.record_name == "voice"
    assert AudioRecorder.renamed_options == {"record": "record_name"}  # what the registry and pipelines read


def test_recorder_saves_each_block_once_with_its_first_sample_time(tmp_path):
    tone = blocks_of(
        run_node(Tone(samplerate=8000, blocksize=800, duration=0.3, realtime=False), steps=3)
    )
    with NodeHarness(AudioRecorder(record_name="voice"), directory=tmp_path) as harness:
        for block in tone:
            chunk = block.to_chunk()
            harness.step({"meter": {"level_dbfs": -3.0}, "tone": chunk})
            harness.step(
                {"meter": {"level_dbfs": -3.0}}
            )  # stepped again: the tone chunk is not new
    recording = Recording(tmp_path / "voice.wav")
    assert recording.frames == 2400 and recording.rate == 8000
    np.testing.assert_array_equal(recording.samples, np.concatenate([b.samples for b in tone]))
    assert recording.blocks == [
        (b.sample_index, pytest.approx(b.timestamp, abs=1e-6)) for b in tone
    ]
    assert recording.meta["start_time"] == pytest.approx(tone[0].timestamp, abs=1e-6)


def test_recorder_fills_a_gap_upstream_with_silence_and_says_so(tmp_path, caplog):
    tone = blocks_of(
        run_node(
            Tone(samplerate=8000, blocksize=800, duration=0.4, dtype="int16", realtime=False),
            steps=4,
        )
    )
    node = AudioRecorder()
    with NodeHarness(node, directory=tmp_path) as harness:
        for block in (tone[0], tone[3]):  # blocks 1 and 2 were lost
            harness.step({"mic": block.to_chunk()})
    assert node.gaps == 1
    assert (
        "1600 frames (0.200 s) missing from mic before frame 2400; filled with silence"
        in caplog.text
    )
    recording = Recording(tmp_path / "audio.wav")
    assert recording.frames == 3200 and recording.meta["dtype"] == "int16"
    assert not recording.samples[800:2400].any() and recording.samples[2400:].any()
    assert recording.blocks[1] == (800, pytest.approx(tone[1].timestamp, abs=1e-6))
