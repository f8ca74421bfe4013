"""Every ``save_*`` signature of ChimeraPy 0.0.10, through ``debug="step"`` nodes, and the files."""

from __future__ import annotations

import csv
import logging
import time
import wave

import av
import chimerapy as cp
import cv2
import numpy as np
import pytest
from chimerapy.compat import paFloat32, paInt8, paInt16, paInt24, paInt32, paUInt8
from legacy_nodes import AudioNode, ImageNode, TabularNode, VideoNode


def read_wav(path):
    """(format tag, channels, rate, bytes per sample, frames) from a WAV header."""
    data = path.read_bytes()
    tag, channels, rate = int.from_bytes(data[20:22], "little"), int.from_bytes(data[22:24], "little"), \
        int.from_bytes(data[24:28], "little")
    width = int.from_bytes(data[34:36], "little") // 8
    at = data.index(b"data")
    size = int.from_bytes(data[at + 4:at + 8], "little")
    return tag, channels, rate, width, size // (width * channels)


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.timeout(60)
def test_audio_node_as_written_for_0_0_10():
    node = AudioNode("an", 1024, 2, paInt16, 44100, debug="step")
    for _ in range(10):
        node.step()
    node.shutdown()
    tag, channels, rate, width, frames = read_wav(node.logdir / "test.wav")
    assert (tag, channels, rate, width) == (1, 2, 44100, 2)  # PCM 16-bit, as paInt16 says
    assert frames == 10 * 1024 // 2  # the 1-D data was interleaved stereo


class Saver(cp.Node):
    """Saves what it is handed, by hand (each test calls node.step with the call to make)."""

    def step(self, data_chunks=None):
        call = data_chunks["call"].get("default")["value"]
        call(self)


def run_calls(*calls):
    node = Saver(name="saver", debug="step")
    for call in calls:
        chunk = cp.DataChunk()
        chunk.add("default", call)
        node.step({"call": chunk})
    node.shutdown()
    return node.logdir


@pytest.mark.timeout(60)
def test_save_audio_positional_in_both_orders_and_pyaudio_bytes():
    tone = (np.sin(np.arange(1600) / 10) * 20000).astype(np.int16)
    logdir = run_calls(
        lambda n: n.save_audio("old", tone, 1, paInt16, 16000),  # 0.0.10: channels, format, rate
        lambda n: n.save_audio("new", tone, 16000, 1),  # today: rate, channels
        lambda n: n.save_audio("bytes", tone.tobytes(), 1, paInt16, 16000),  # stream.read() bytes
        lambda n: n.save_audio(name="kw", data=tone, channels=1, format=paInt16, rate=16000),
        lambda n: n.save_audio("samples", samples=tone, rate=16000, channels=1),
    )
    for name in ("old", "new", "bytes", "kw", "samples"):
        assert read_wav(logdir / f"{name}.wav") == (1, 1, 16000, 2, 1600), name
        with wave.open(str(logdir / f"{name}.wav")) as file:
            assert np.array_equal(np.frombuffer(file.readframes(1600), np.int16), tone), name


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt, raw, expect_tag, expect_width", [
    (paFloat32, (np.linspace(-1, 1, 800)).astype(np.float32).tobytes(), 3, 4),
    (paInt32, (np.linspace(-1, 0.99, 800) * 2**31).astype(np.int32).tobytes(), 3, 4),
    (paInt24, b"".join(int(v).to_bytes(3, "little", signed=True) for v in np.linspace(-2**23, 2**23 - 1, 800)), 3, 4),
    (paInt8, (np.linspace(-128, 127, 800)).astype(np.int8).tobytes(), 1, 2),
    (paUInt8, (np.linspace(0, 255, 800)).astype(np.uint8).tobytes(), 1, 2),
])
def test_every_pyaudio_format(fmt, raw, expect_tag, expect_width):
    logdir = run_calls(lambda n: n.save_audio("mic", raw, 2, fmt, 8000))
    tag, channels, rate, width, frames = read_wav(logdir / "mic.wav")
    assert (tag, channels, rate, width, frames) == (expect_tag, 2, 8000, expect_width, 400)
    data = (logdir / "mic.wav").read_bytes()
    samples = np.frombuffer(data[data.index(b"data") + 8:], np.float32 if tag == 3 else np.int16)
    unit = samples / (1.0 if tag == 3 else 32768.0)
    assert -1.0 <= unit.min() < -0.95 and 0.95 < unit.max() <= 1.0  # full scale kept


def test_an_unknown_format_names_the_constants():
    node = Saver(name="bad-format", debug="step")
    with pytest.raises(cp.RecordError, match="PyAudio sample format"):
        node.save_audio("mic", np.zeros(10), 1, 7, 8000)
    node.shutdown()


@pytest.mark.timeout(60)
def test_tabular_dict_series_and_dataframe():
    node = TabularNode(name="tn", debug="step")
    for _ in range(5):
        node.step()
    node.shutdown()
    table = rows(node.logdir / "test.csv")
    assert len(table) == 15 and [r["content"] for r in table[:3]] == ["HELLO", "GOODBYE", "WAIT!"]
    assert set(table[0]) == {"timestamp", "time", "content"}


@pytest.mark.timeout(60)
def test_images_of_float_dtype_are_converted_with_one_warning(caplog):
    caplog.set_level(logging.WARNING, logger="chimerapy")
    node = ImageNode(name="img", debug="step")
    for _ in range(5):
        node.step()
    node.shutdown()
    pngs = sorted((node.logdir / "test").glob("*.png"))
    assert len(pngs) == 5 and (node.logdir / "test" / "0.png").exists()  # 0.0.10's names
    image = cv2.imread(str(pngs[0]))
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    warnings = [r for r in caplog.records if "converted to uint8" in r.getMessage()]
    assert len(warnings) == 1 and "'test'" in warnings[0].getMessage()


def video_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, duration, rate = stream.frames, float(stream.duration * stream.time_base), float(stream.average_rate)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == frames
    return frames, duration, rate


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fps, period", [(30, 1 / 10), (10, 1 / 100)], ids=["slower-than-fps", "faster-than-fps"])
def test_video_lasts_as_long_as_the_saving(fps, period):
    node = VideoNode(name="vn", fps=fps, period=period, debug="step")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        node.step()
    node.shutdown()
    saved = rows(node.logdir / "test.timestamps.csv")
    span = float(saved[-1]["timestamp"]) - float(saved[0]["timestamp"])
    frames, duration, rate = video_facts(node.logdir / "test.mp4")
    assert rate == fps
    assert abs(duration - span) <= 1.001 / fps  # within one frame of the wall-clock span
    assert abs(frames - (round(span * fps) + 1)) <= 1
    shown = [int(r["frame_index"]) for r in saved if r["frame_index"] != "-1"]
    assert shown == sorted(shown) and shown[-1] == frames - 1
    dropped = sum(r["frame_index"] == "-1" for r in saved)
    assert (dropped > 0) == (period < 1 / fps)


@pytest.mark.timeout(60)
def test_video_variable_frame_rate_keeps_every_frame():
    node = Saver(name="vfr", debug="step")
    start = node.now()
    for i in range(20):
        node.save_video("v", np.full((16, 16, 3), i * 10, np.uint8), 30, timestamp=start + i * 0.07, timing="vfr")
    node.shutdown()
    frames, duration, _ = video_facts(node.logdir / "v.mp4")
    assert frames == 20 and abs(duration - 19 * 0.07) <= 1.001 / 30
