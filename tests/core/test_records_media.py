"""Video and audio records: what lands on disk opens in other tools with exactly what was saved."""

from __future__ import annotations

import csv
import json
import struct
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from chimerapy.records import Recorder

T0 = 1_700_000_000.0  # an aligned UNIX time


@pytest.fixture
def make_recorder(tmp_path):
    """A factory of Recorders in ``tmp_path/rec``; every one is closed at teardown."""
    made: list[Recorder] = []

    def make(**kwargs) -> Recorder:
        made.append(Recorder(tmp_path / "rec", **kwargs))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


def moving_frames(count: int, height: int = 480, width: int = 640) -> list[np.ndarray]:
    """BGR frames of a gradient that slides one step per frame (compresses like camera video)."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x // 3) % 256, (y // 2) % 256, ((x + y) // 4) % 256], axis=-1)
    base = base.astype(np.uint8)
    return [np.roll(base, 4 * i, axis=1) for i in range(count)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.timeout(120)
def test_ten_seconds_of_video_open_in_pyav_and_opencv_with_every_frame(make_recorder, tmp_path):
    recorder = make_recorder()
    frames = moving_frames(300)
    for i, frame in enumerate(frames):
        recorder.save_video("cam", frame, 30, timestamp=T0 + i / 30)
    recorder.close()
    mp4 = tmp_path / "rec" / "cam.mp4"

    # PyAV: H.264 yuv420p, 300 frames with pts from index and fps, a keyframe at least every second.
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        times, keyframes, samples = [], [], {}
        for frame in container.decode(stream):
            index = len(times)
            times.append(frame.pts * frame.time_base)
            if frame.key_frame:
                keyframes.append(index)
            if index in (0, 151, 299):
                samples[index] = frame.to_ndarray(format="bgr24")
    assert times == [Fraction(i, 30) for i in range(300)]
    assert keyframes[0] == 0 and max(np.diff(keyframes + [300])) <= 30
    for index, decoded in samples.items():
        assert np.abs(decoded.astype(int) - frames[index]).mean() < 6  # lossy, but these frames

    # closed: an ordinary MP4 (the fragments rewritten) whose header gives count and duration
    data = mp4.read_bytes()
    assert b"moof" not in data and b"moov" in data
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.frames == 300 and stream.duration * stream.time_base == 10

    rows = read_csv(tmp_path / "rec" / "cam.timestamps.csv")
    assert [int(row["frame_index"]) for row in rows] == list(range(300))
    assert [float(row["timestamp"]) for row in rows] == [T0 + i / 30 for i in range(300)]
    assert recorder.stats()["cam"]["written"] == 300

    cv2 = pytest.importorskip("cv2")
    capture = cv2.VideoCapture(str(mp4))
    try:
        assert capture.isOpened()
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 300
        count = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if count == 151:
                assert image.shape == (480, 640, 3)
                assert np.abs(image.astype(int) - frames[151]).mean() < 6
            count += 1
    finally:
        capture.release()
    assert count == 300


@pytest.mark.timeout(60)
def test_video_keeps_bgr_order_pads_odd_sizes_and_takes_gray(make_recorder, tmp_path):
    recorder = make_recorder()
    blue = np.zeros((33, 65, 3), np.uint8)
    blue[..., 0] = 255  # BGR: pure blue
    gray = np.full((48, 64), 200, np.uint8)
    for i in range(5):
        recorder.save_video("odd", blue, 10, timestamp=T0 + i)
        recorder.save_video("gray", gray, 10)
    recorder.close()

    with av.open(str(tmp_path / "rec" / "odd.mp4")) as container:
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert len(decoded) == 5
    assert decoded[0].shape == (34, 66, 3)  # padded to even by repeating the last row/column
    b, g, r = decoded[0][..., 0].mean(), decoded[0][..., 1].mean(), decoded[0][..., 2].mean()
    assert b > 200 and g < 40 and r < 40

    with av.open(str(tmp_path / "rec" / "gray.mp4")) as container:
        decoded = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert len(decoded) == 5 and abs(decoded[-1].mean() - 200) < 3


@pytest.mark.timeout(60)
def test_ntsc_frame_rate_gives_exact_presentation_times(make_recorder, tmp_path):
    recorder = make_recorder()
    for frame in moving_frames(10, 64, 64):
        recorder.save_video("ntsc", frame, 30000 / 1001)
    recorder.close()
    with av.open(str(tmp_path / "rec" / "ntsc.mp4")) as container:
        times = [frame.pts * frame.time_base for frame in container.decode(video=0)]
    assert times == [Fraction(1001 * i, 30000) for i in range(10)]


def wav_chunks(path: Path) -> dict[bytes, bytes]:
    """The chunks of a RIFF/WAVE file, read independently of the writer."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, offset = {}, 12
    while offset < len(data):
        kind, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        chunks[kind] = data[offset + 8 : offset + 8 + size]
        offset += 8 + size + size % 2
    return chunks


@pytest.mark.timeout(60)
@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("channels", [1, 2])
def test_ten_seconds_of_audio_in_blocks(make_recorder, tmp_path, dtype, channels):
    recorder = make_recorder()
    rate, block = 16_000, 1024
    rng = np.random.default_rng(0)
    saved = []
    start = T0 + 0.25
    while sum(len(b) for b in saved) < 10 * rate:
        samples = rng.uniform(-0.5, 0.5, (block, channels))
        samples = (samples * 32767).astype(np.int16) if dtype == "int16" else samples.astype(
            np.float32
        )
        if channels == 1:
            samples = samples[:, 0]  # shape (n,) for mono
        first = sum(len(b) for b in saved)
        recorder.save_audio("mic", samples, rate, channels, timestamp=start + first / rate)
        saved.append(samples.copy())
        samples[:] = 0  # the caller may reuse its buffer at once: the Recorder copied it
    recorder.close()
    expected = np.concatenate(saved).reshape(-1, channels)
    folder = tmp_path / "rec"

    frames = len(expected)
    assert abs(frames - 10 * rate) <= block
    chunks = wav_chunks(folder / "mic.wav")
    tag, n_channels, n_rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    assert (tag, n_channels, n_rate, bits) == (1 if dtype == "int16" else 3, channels, rate,
                                               16 if dtype == "int16" else 32)
    assert np.array_equal(np.frombuffer(chunks[b"data"], dtype=expected.dtype), expected.ravel())
    if dtype == "int16":
        with wave.open(str(folder / "mic.wav")) as reader:
            assert (reader.getnframes(), reader.getframerate(), reader.getnchannels()) == (
                frames, rate, channels)
    else:
        assert struct.unpack("<I", chunks[b"fact"])[0] == frames
    with av.open(str(folder / "mic.wav")) as container:  # an independent decoder
        decoded = sum(frame.samples for frame in container.decode(audio=0))
        assert decoded == frames and container.streams.audio[0].channels == channels

    meta = json.loads((folder / "mic.audio.json").read_text())
    assert meta["start_time"] == start
    assert (meta["rate"], meta["channels"], meta["dtype"], meta["frames"]) == (
        rate, channels, dtype, frames)
    assert meta["duration"] == pytest.approx(10.0, abs=block / rate)
    blocks = read_csv(folder / "mic.blocks.csv")
    assert [int(row["sample_index"]) for row in blocks] == list(range(0, frames, block))
    assert [float(row["timestamp"]) for row in blocks] == [start + i / rate
                                                           for i in range(0, frames, block)]


@pytest.mark.timeout(30)
def test_audio_takes_any_channel_count(make_recorder, tmp_path):
    recorder = make_recorder()
    samples = np.arange(6 * 100, dtype=np.int16).reshape(100, 6)
    recorder.save_audio("array", samples, 48_000, 6)
    recorder.save_audio("array", samples, 48_000, 6)
    recorder.close()
    with wave.open(str(tmp_path / "rec" / "array.wav")) as reader:
        assert (reader.getnchannels(), reader.getnframes()) == (6, 200)
        data = np.frombuffer(reader.readframes(200), np.int16).reshape(200, 6)
    assert np.array_equal(data[:100], samples) and np.array_equal(data[100:], samples)
