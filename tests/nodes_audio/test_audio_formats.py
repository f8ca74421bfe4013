"""Pure code of the audio pack: wire records, sample conversion, drift, device choice, WAV reading."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest

import chimerapy as cp
from audio_helpers import write_wav
from chimerapy_nodes_audio import (
    AudioBlock,
    AudioDeviceError,
    AudioFileError,
    WavReader,
    find_block,
)
from chimerapy_nodes_audio.blocks import convert, to_float
from chimerapy_nodes_audio.drift import DriftMeter
from chimerapy_nodes_audio.microphone import choose_input_device

pytestmark = pytest.mark.timeout(30)


# -- wire records ------------------------------------------------------------------------------


def test_block_round_trips_through_a_chunk():
    samples = np.arange(12, dtype=np.int16).reshape(6, 2)
    chunk = AudioBlock(samples, 8000, 2, 123.5, 600).to_chunk(clock_drift=0.001)
    assert chunk.keys() == [
        "samples",
        "rate",
        "channels",
        "timestamp",
        "sample_index",
        "clock_drift",
    ]
    block = AudioBlock.from_chunk(chunk)
    assert block.samples is samples and (block.rate, block.channels) == (8000, 2)
    assert (block.timestamp, block.sample_index, block.frames) == (123.5, 600, 6)
    assert block.duration == pytest.approx(6 / 8000)


def test_mono_samples_may_be_one_dimensional_and_mismatches_are_named():
    chunk = AudioBlock(np.zeros(5, np.float32), 100, 1, 0.0, 0).to_chunk()
    assert AudioBlock.from_chunk(chunk).samples.shape == (5, 1)
    chunk.producer = "mic"
    chunk.add("channels", 2)
    with pytest.raises(ValueError, match=r"'mic'.*shape \(5,\) do not match channels=2"):
        AudioBlock.from_chunk(chunk)
    partial = cp.DataChunk()
    partial.add("samples", np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match="no record 'rate'"):
        AudioBlock.from_chunk(partial)


def test_find_block_takes_the_first_chunk_with_samples_whatever_its_producer():
    other = cp.DataChunk()
    other.add("level_dbfs", -3.0)
    audio = AudioBlock(np.zeros((4, 1), np.float32), 16000, 1, 1.0, 0).to_chunk()
    producer, block = find_block({"meter": other, "anything": audio})
    assert producer == "anything" and block.frames == 4
    assert find_block({"meter": other}) is None


def test_int16_and_float32_convert_both_ways_exactly():
    pcm = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    floats = to_float(pcm)
    assert (
        floats.dtype == np.float32
        and floats[0] == -1.0
        and floats[-1] == pytest.approx(32767 / 32768)
    )
    np.testing.assert_array_equal(convert(floats, "int16"), pcm)
    assert convert(pcm, "int16") is pcm
    np.testing.assert_array_equal(
        convert(np.array([1.5, -1.5]), "int16"), [32767, -32768]
    )  # clipped
    with pytest.raises(ValueError, match="dtype must be one of"):
        convert(pcm, "int32")


# -- drift -------------------------------------------------------------------------------------


def test_drift_meter_ignores_jitter_and_measures_a_slow_device():
    rng = np.random.default_rng(1)
    jittery, drifting = DriftMeter(window=1.0), DriftMeter(window=1.0)
    block = 0.02
    for k in range(1, 1001):  # 20 s of blocks
        stream = k * block
        latency = 0.005 + rng.exponential(0.002)  # scheduling delays only ever add
        jittery.observe(stream, stream + latency)
        drifting.observe(stream, stream * (1 + 100e-6) + latency)  # a device 100 ppm slow
        if k == 25:
            assert jittery.drift == drifting.drift == 0.0  # still in the first window
    assert abs(jittery.drift) < 0.0005
    assert drifting.drift == pytest.approx(19.0 * 100e-6, abs=0.0005)
    assert drifting.ppm == pytest.approx(100, abs=30)


# -- device choice -----------------------------------------------------------------------------

DEVICES = [
    {"name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "max_input_channels": 2},
    {"name": "HDMI 0", "max_input_channels": 0},
    {"name": "USB Audio Mic (hw:1,0)", "max_input_channels": 1},
    {"name": "pulse", "max_input_channels": 32},
    {"name": "default", "max_input_channels": 32},
]


def test_input_device_by_default_index_and_name():
    assert choose_input_device(DEVICES, 4, None) == 4
    assert choose_input_device(DEVICES, 4, 2) == 2
    assert choose_input_device(DEVICES, 4, "PULSE") == 3  # exact, case-insensitive
    assert choose_input_device(DEVICES, 4, "usb audio") == 2  # a unique part


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        (
            "webcam",
            r"unknown audio input device 'webcam'; input devices: 0: 'HDA Intel.*2: 'USB Audio.*3: 'pulse'",
        ),
        ("hw:", r"'hw:' is ambiguous \(0: 'HDA.*2: 'USB"),
        (1, r"audio device 1 has no input channels; input devices: 0: "),
        (9, r"audio device 9 does not exist"),
        (2.5, r"device must be an index, a name or None"),
    ],
)
def test_bad_device_choices_list_the_input_devices(wanted, message):
    with pytest.raises(AudioDeviceError, match=message):
        choose_input_device(DEVICES, 4, wanted)


def test_no_input_device_at_all_is_a_clear_error():
    with pytest.raises(
        AudioDeviceError, match=r"no audio input device.*devices: 'HDMI 0'.*sound server"
    ):
        choose_input_device([DEVICES[1]], -1, None)
    with pytest.raises(AudioDeviceError, match=r"devices: none"):
        choose_input_device([], -1, "pulse")
    with pytest.raises(
        AudioDeviceError, match=r"no default audio input device; pass device= one of: 0: "
    ):
        choose_input_device(DEVICES, -1, None)
    assert issubclass(AudioDeviceError, (cp.ChimeraPyError, LookupError))


# -- WAV reading -------------------------------------------------------------------------------


def _riff(fmt: bytes, data: bytes, data_size: int | None = None, extra: bytes = b"") -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def test_pcm16_reads_as_written_by_the_wave_module(tmp_path):
    pcm = np.random.default_rng(0).integers(-32768, 32767, (1001, 3), dtype=np.int16)
    path = write_wav(tmp_path / "a.wav", pcm, 22050)
    with WavReader(path, dtype="int16") as reader:
        assert (reader.rate, reader.channels, reader.frames) == (22050, 3, 1001)
        blocks = [reader.read(400) for _ in range(4)]
    assert [len(b) for b in blocks] == [400, 400, 201, 0]
    np.testing.assert_array_equal(np.concatenate(blocks), pcm)
    with WavReader(path) as reader:
        np.testing.assert_array_equal(reader.read(2000), pcm / np.float32(32768))


@pytest.mark.parametrize("bits", [8, 24, 32])
def test_other_pcm_widths_agree_with_the_wave_module(tmp_path, bits):
    width = bits // 8
    raw = np.random.default_rng(bits).integers(0, 256, 2 * width * 50, dtype=np.uint8).tobytes()
    path = tmp_path / f"{bits}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2), out.setsampwidth(width), out.setframerate(8000)
        out.writeframes(raw)
    with WavReader(path) as reader:
        got = reader.read(100)
    assert got.shape == (50, 2) and got.dtype == np.float32
    ints = np.frombuffer(raw, np.uint8).reshape(-1, width).astype(np.int64)
    value = sum(ints[:, i] << (8 * i) for i in range(width))
    if bits == 8:
        expected = (value - 128) / 128.0
    else:
        value = np.where(value >= 1 << (bits - 1), value - (1 << bits), value)
        expected = value / float(1 << (bits - 1))
    np.testing.assert_allclose(got.reshape(-1), expected, atol=1e-7)


def test_float_and_extensible_wavs_and_an_unfinished_data_size(tmp_path):
    samples = np.linspace(-1, 1, 40, dtype=np.float32).reshape(20, 2)
    (tmp_path / "f.wav").write_bytes(
        _riff(_fmt(3, 2, 16000, 32), samples.tobytes(), extra=b"fact" + struct.pack("<II", 4, 20))
    )
    extensible = (
        _fmt(0xFFFE, 2, 16000, 64)
        + struct.pack("<HHI", 22, 64, 3)
        + struct.pack("<H", 3)
        + bytes(14)
    )
    (tmp_path / "x.wav").write_bytes(
        _riff(extensible, samples.astype(np.float64).tobytes(), data_size=0)
    )
    for name in ("f.wav", "x.wav"):
        with WavReader(tmp_path / name) as reader:
            assert (reader.frames, reader.rate, reader.channels) == (20, 16000, 2)
            np.testing.assert_array_equal(reader.read(100), samples)
            reader.rewind()
            np.testing.assert_array_equal(reader.read(3), samples[:3])


def test_unreadable_files_name_the_file_and_the_reason(tmp_path):
    with pytest.raises(AudioFileError, match=r"cannot open WAV file '.*missing.wav'"):
        WavReader(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("hello, not audio")
    with pytest.raises(
        AudioFileError, match=r"text.wav' is not a WAV file this node can play: no RIFF/WAVE header"
    ):
        WavReader(tmp_path / "text.wav")
    (tmp_path / "adpcm.wav").write_bytes(_riff(_fmt(2, 1, 8000, 4), bytes(10)))
    with pytest.raises(AudioFileError, match="4-bit format tag 0x2 samples are not supported"):
        WavReader(tmp_path / "adpcm.wav")
    (tmp_path / "nodata.wav").write_bytes(_riff(_fmt(1, 1, 8000, 16), b"")[:-8])
    with pytest.raises(AudioFileError, match="no data chunk"):
        WavReader(tmp_path / "nodata.wav")
    assert issubclass(AudioFileError, (cp.ChimeraPyError, ValueError))
