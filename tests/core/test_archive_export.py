"""chimerapy export: pyxdf loads the XDF with every stream and the loader's times (the skewed
Worker's 30 s offset carried as clock offsets); the MCAP reader reads every message back, with
frames as foxglove.CompressedImage JPEGs that show the frame saved."""

import base64
import json
import shutil

import chimerapy as cp
import numpy as np
import pytest
from chimerapy.cli.main import main
from chimerapy.net.jpeg import JpegDecoder
from click.testing import CliRunner
from support.archive import clean_session, read_index  # noqa: F401 - a fixture

pyxdf = pytest.importorskip("pyxdf")
mcap_reader = pytest.importorskip("mcap.reader")


@pytest.mark.timeout(180)
def test_xdf_export_loads_in_pyxdf_with_the_loaders_times(clean_session, tmp_path):  # noqa: F811
    target = tmp_path / "session.xdf"
    result = CliRunner().invoke(main, ["export", str(clean_session.path), "--to", "xdf", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o077 == 0
    session = cp.open_session(clean_session.path)
    by_name = _loaded_with_the_loaders_times(session, target)
    video = by_name["camera/frames"]
    assert video["info"]["type"][0] == "VideoFrames"
    assert np.array_equal(np.asarray(video["time_series"])[:, 0], np.arange(session.stream("camera/frames").count))
    assert video["info"]["desc"][0]["file"][0].endswith("camera/frames.mp4")
    audio = by_name["mic/mic"]
    assert float(audio["info"]["nominal_srate"][0]) == 16000
    assert np.array_equal(np.asarray(audio["time_series"])[:, 0], session.stream("mic/mic").samples().data[:, 0])
    events = by_name["camera/events"]
    assert [json.loads(text[0])["frame"] for text in events["time_series"]] == [
        r["data"]["frame"] for r in session.stream("camera/events").records()]
    clock = by_name["beacon/clock"]
    assert abs(np.median(clock["clock_values"]) - 30.0) < 0.001  # the skewed Worker's offsets ...
    raw, _ = pyxdf.load_xdf(str(target), synchronize_clocks=False, dejitter_timestamps=False,
                            select_streams=[{"name": "beacon/clock"}])
    local = raw[0]["time_stamps"]  # ... and its own clock, 30 s behind the Manager's
    assert np.abs(local + 30.0 - session.stream("beacon/clock").times).max() < 0.005
    columns = [c["label"][0] for c in clock["info"]["desc"][0]["channels"][0]["channel"]]
    assert columns == ["i", "raw", "seen"]


@pytest.mark.timeout(180)
def test_xdf_times_stay_the_loaders_when_the_clock_estimates_scatter(clean_session, tmp_path):  # noqa: F811
    """The Worker applied each offset estimate until the next; pyxdf fits one line through them.
    Estimates 2 ms either side of their line (a loaded machine) must not move pyxdf's times."""
    copy = tmp_path / clean_session.path.name
    shutil.copytree(clean_session.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    history = meta["clock_offsets"]["w1"]["history"]
    assert len(history) >= 3, "too few clock estimates to scatter"
    for k, row in enumerate(history):
        row[1] += 0.002 if k % 2 else -0.002
    (copy / "meta.json").write_text(json.dumps(meta))
    target = tmp_path / "session.xdf"
    result = CliRunner().invoke(main, ["export", str(copy), "--to", "xdf", "-o", str(target)])
    assert result.exit_code == 0, result.output
    by_name = _loaded_with_the_loaders_times(cp.open_session(copy), target)
    raw, _ = pyxdf.load_xdf(str(target), synchronize_clocks=False, dejitter_timestamps=False,
                            select_streams=[{"name": "camera/frames"}])
    shift = by_name["camera/frames"]["time_stamps"] - raw[0]["time_stamps"]  # the offset pyxdf applied
    assert np.abs(shift - np.median([row[1] for row in history])).max() < 0.003


def _loaded_with_the_loaders_times(session, target):
    """pyxdf's streams of the XDF ``target`` by name, after checking that there is one per stream of
    ``session`` (and the log) with the loader's times, to 0.1 ms."""
    streams, _ = pyxdf.load_xdf(str(target), dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    assert set(by_name) == {s.key for s in session.streams} | {"chimerapy.log"}
    for stream in session.streams:
        loaded = by_name[stream.key]
        times = stream.samples().times() if stream.kind == "audio" else stream.times
        assert len(loaded["time_stamps"]) == len(times), stream.key
        error = np.abs(loaded["time_stamps"] - times).max()
        assert error < 0.0001, f"{stream.key}: pyxdf times differ by {error * 1000:.3f} ms"
    return by_name


@pytest.mark.timeout(180)
def test_mcap_export_reads_back_every_message_on_one_timeline(clean_session, tmp_path):  # noqa: F811
    target = tmp_path / "session.mcap"
    result = CliRunner().invoke(main, ["export", str(clean_session.path), "--to", "mcap", "-o", str(target)])
    assert result.exit_code == 0, result.output
    session = cp.open_session(clean_session.path)
    counts: dict[str, int] = {}
    schemas: dict[str, tuple[str, str]] = {}
    frames: list[tuple[int, int]] = []
    last = 0
    decoder = JpegDecoder()
    with target.open("rb") as file:
        reader = mcap_reader.make_reader(file)
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            assert message.log_time >= last  # written in time order: one timeline
            last = message.log_time
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            schemas[channel.topic] = (schema.name, schema.encoding)
            assert channel.message_encoding == "json"
            payload = json.loads(message.data)
            if channel.topic == "/w1/camera/frames":
                assert payload["format"] == "jpeg"
                stamp = payload["timestamp"]["sec"] * 10**9 + payload["timestamp"]["nsec"]
                assert stamp == message.log_time
                image = decoder.decode(base64.b64decode(payload["data"]))
                frames.append((read_index(image), message.log_time))
    for stream in session.streams:
        assert counts[f"/{stream.worker}/{stream.node}/{stream.name}"] == stream.count
    assert counts["/log"] == len(session.log()) > 0
    assert schemas["/w1/camera/frames"] == ("foxglove.CompressedImage", "jsonschema")
    assert schemas["/w1/camera/snap"] == ("foxglove.CompressedImage", "jsonschema")
    assert schemas["/log"] == ("foxglove.Log", "jsonschema")
    times = session.stream("camera/frames").times
    assert [index for index, _ in frames] == list(range(len(times)))
    assert all(abs(when / 1e9 - times[index]) < 1e-6 for index, when in frames)
