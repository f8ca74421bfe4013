"""The archive loader on a real session recorded by three Workers (one 30 s off under faketime):
every stream with the times its node saw, frames by time, at(t), align; and sessions cut short
by a crash or written in older layouts."""

import json
import shutil
from fractions import Fraction

import chimerapy as cp
import numpy as np
import pytest
from chimerapy.archive import ArchiveError
from chimerapy.records import Recorder
from support.archive import BLOCK, RATE, clean_session, read_index  # noqa: F401 - a fixture

pytest.importorskip("pandas")

#: How far apart two reads of a node's clock may be: the time a node noted and the time its save
#: took are read one after the other (well under 1 ms; a process preempted between them on a
#: busy machine takes longer).
TWO_READS = 0.005


@pytest.mark.timeout(180)
def test_every_stream_loads_with_the_times_its_node_saw(clean_session):  # noqa: F811
    session = cp.open_session(clean_session.path)
    keys = {(s.worker, s.key, s.kind) for s in session.streams}
    assert keys == {
        ("w1", "camera/frames", "video"), ("w1", "camera/truth", "tabular"), ("w1", "camera/events", "json"),
        ("w1", "camera/notes", "text"), ("w1", "camera/snap", "image"), ("w2", "mic/mic", "audio"),
        ("w2", "mic/truth", "tabular"), ("skewed", "beacon/clock", "tabular"),
    }
    assert session.meta["session"] == session.id and session.complete
    assert session.start - 1 < session.stream("camera", "frames").start < session.end  # start_time: once all started

    truth = session.stream("camera", "truth").table()
    video = session.stream("camera", "frames")
    assert video.count == len(truth) >= 90
    assert video.times.dtype == np.float64
    lag = video.times - truth["seen"].to_numpy()
    assert (lag >= 0).all() and lag.max() < TWO_READS, f"video times differ by up to {lag.max() * 1000:.3f} ms"

    events = session.stream("camera/events")
    assert [r["data"]["frame"] for r in events.records()] == list(range(0, video.count, 10))[: events.count]
    assert np.abs(events.times - np.array([r["data"]["seen"] for r in events.records()])).max() < TWO_READS
    assert list(events.table().columns) == ["timestamp", "frame", "seen"]
    notes = session.stream("camera", "notes")
    pieces = [text.split() for text in notes.texts()]
    assert [int(p[1]) for p in pieces] == list(range(0, 15 * notes.count, 15))
    assert all(text.endswith("\n") for text in notes.texts())
    assert np.abs(notes.times - np.array([float(p[3]) for p in pieces])).max() < TWO_READS
    snap = session.stream("camera", "snap")
    assert snap.count >= 3 and [read_index(snap.image(k)) for k in range(snap.count)] == [
        30 * k for k in range(snap.count)]

    mic, mic_truth = session.stream("mic", "mic"), session.stream("mic", "truth").table()
    assert mic.count == len(mic_truth) >= 60
    # save_audio's default time is "the block just ended": the time seen minus its duration
    expected = mic_truth["seen"].to_numpy() - BLOCK / RATE
    assert np.abs(mic.times - expected).max() < TWO_READS
    samples = mic.samples()
    assert samples.data.shape == (BLOCK * mic.count, 1) and samples.rate == RATE
    assert [int(samples.data[k * BLOCK, 0]) for k in range(mic.count)] == list(range(mic.count))
    middle = 5 * BLOCK + BLOCK // 2
    assert abs(samples.time_of(middle) - (mic.times[5] + (BLOCK // 2) / RATE)) < 1e-9
    assert samples.index_at(float(samples.time_of(middle))) == middle

    # the skewed Worker's clock read 30 s early; its recorded times are Manager times
    clock = session.stream("beacon", "clock")
    rows = clock.table()
    assert clock.worker == "skewed" and clock.count >= 80
    errors = np.abs(clock.times - (rows["raw"].to_numpy() + 30.0))
    assert np.median(errors) < 0.001 and errors.max() < 0.005
    assert abs(session.clock_offsets["skewed"].offset - 30.0) < 0.001
    # beacon saw camera frame i shortly after the camera saved it: both on the Manager's clock
    delay = clock.times - video.times[rows["i"].to_numpy()]
    assert (delay > 0).all() and np.median(delay) < 0.05
    session.close()


@pytest.mark.timeout(180)
def test_frame_at_and_at_return_what_was_saved_at_that_time(clean_session):  # noqa: F811
    with cp.open_session(clean_session.path) as session:
        video = session.stream("camera", "frames")
        rng = np.random.default_rng(7)
        for index in [0, video.count - 1, *rng.integers(0, video.count, 12).tolist()]:
            t = video.times[index]
            assert read_index(video.frame_at(t)) == index
            following = video.times[index + 1] if index + 1 < video.count else t + 1
            assert read_index(video.frame_at((t + following) / 2)) == index  # until the next frame
            assert read_index(video.frame(index)) == index
        assert [read_index(video.frame(i)) for i in range(20, 30)] == list(range(20, 30))  # read on
        with pytest.raises(ArchiveError, match="nothing saved"):
            video.frame_at(video.start - 1)

        t = float(video.times[45]) + 0.001
        state = session.at(t)
        assert set(state) == {s.key for s in session.streams}
        assert state["camera/frames"].index == 45 and read_index(state["camera/frames"].value) == 45
        assert state["camera/truth"].value["frame"] == 45
        assert state["camera/events"].value["frame"] == 40
        assert state["camera/notes"].value.startswith("frame 45 at ")
        assert state["camera/snap"].index == 1
        mic = session.stream("mic", "mic")
        assert state["mic/mic"].time <= t < state["mic/mic"].time + 0.1
        assert int(state["mic/mic"].value[0, 0]) == state["mic/mic"].index
        assert session.at(session.stream("camera", "frames").start - 10)["camera/frames"] is None

        aligned = session.align(["camera/truth", mic], rate=10)
        assert list(aligned.columns) == ["timestamp", "camera/truth/frame", "camera/truth/seen", "mic/mic/ch0"]
        inside = aligned[(aligned.timestamp > video.start + 0.1) & (aligned.timestamp < video.end)]
        # the truth rows are saved just after their frames: the latest row at t is found by its own time
        truth_times = session.stream("camera", "truth").times
        expected = np.searchsorted(truth_times, inside.timestamp.to_numpy(), side="right") - 1
        assert (inside["camera/truth/frame"].to_numpy() == expected).all()
        assert np.isnan(session.align(["camera/truth"], times=[video.start - 1])["camera/truth/frame"][0])


def _recorded(folder, base=1.7e9, frames=75):
    with Recorder(folder) as recorder:
        for i in range(frames):
            frame = np.full((48, 64, 3), 90, np.uint8)
            recorder.save_video("cam", frame, 30, timestamp=base + i / 30)
            recorder.save_tabular("rows", {"i": i}, timestamp=base + i / 30)
        recorder.save_audio("mic", np.zeros(1600, np.float32), 16000, 1, timestamp=base)
        recorder.save_json("ev", {"a": 1}, timestamp=base)


@pytest.mark.timeout(60)
def test_json_nested_past_the_recursion_limit_is_a_note_not_a_crash(tmp_path):
    session_dir = tmp_path / "nested"
    node = session_dir / "w1" / "n1"
    _recorded(node, frames=3)
    deep = "[" * 200_000
    (session_dir / "meta.json").write_text(deep)
    with (node / "ev.jsonl").open("a") as file:
        file.write(deep + "\n")
    (node / "mic.audio.json").write_text(deep)
    session = cp.open_session(session_dir)
    assert "meta.json is unreadable" in " ".join(session.notes)
    events = session.stream("n1", "ev")
    assert [r["data"] for r in events.records()] == [{"a": 1}]
    assert "line 2 is not a record" in " ".join(events.notes)
    mic = session.stream("n1", "mic")
    assert mic.info == {} and mic.rate == 16000 and "unreadable" in " ".join(mic.notes)  # from the WAV header


@pytest.mark.timeout(60)
def test_a_session_cut_short_by_a_crash_still_opens(tmp_path):
    session_dir = tmp_path / "crashed"
    node = session_dir / "w1" / "n1"
    _recorded(node)
    (session_dir / "meta.json").write_text(json.dumps({"session": "crashed", "start_time": 1.7e9}))
    with (node / "rows.csv").open("a") as file:
        file.write("1700000009.5,7")  # a row cut in the middle, no newline
    with (node / "cam.timestamps.csv").open("a") as file:
        file.write("".join(f"{i},{1.7e9 + i / 30!r}\n" for i in range(75, 90)))  # frames never encoded
    (node / "ev.jsonl").rename(node / "ev.jsonl.part")  # a transfer that never finished
    with (node / "mic.wav").open("ab") as file:
        file.write(b"\x00\x00")  # half a float sample past the header's size

    session = cp.open_session(session_dir / "meta.json")
    assert not session.complete and session.end == pytest.approx(1.7e9 + 74 / 30)
    video = session.stream("n1", "cam")
    assert video.count == 75 and "never reached the MP4" in " ".join(video.notes)
    assert video.frame_at(video.end).shape == (48, 64, 3)
    rows = session.stream("n1", "rows")
    assert rows.count == 75 and len(rows.table()) == 75 and "torn" in " ".join(rows.notes)
    events = session.stream("n1", "ev")
    assert events.count == 1 and "transfer never finished" in " ".join(events.notes)
    assert session.stream("n1", "mic").samples().data.shape == (1600, 1)

    from chimerapy.archive.check import check_session

    report = check_session(session)
    kinds = {p.kind for p in report.problems}
    assert {"file", "no_stop"} <= kinds and not report.clean


@pytest.mark.timeout(60)
def test_older_layouts_open(tmp_path):
    # a Worker's own folder (the earliest versions kept recordings there): <session>/<node>/..., no meta.json
    worker_side = tmp_path / "20260101-000000-abcdef"
    _recorded(worker_side / "n1")
    session = cp.open_session(worker_side)
    assert {(s.worker, s.key) for s in session.streams} == {("", "n1/cam"), ("", "n1/rows"), ("", "n1/mic"), ("", "n1/ev")}
    assert session.meta == {} and session.start == pytest.approx(1.7e9)
    assert "no readable meta.json" in session.notes[0]
    # a video whose MP4 was lost keeps its times; a table named like an index file stays a table
    shutil.copytree(worker_side, tmp_path / "copy")
    (tmp_path / "copy" / "n1" / "cam.mp4").unlink()
    with Recorder(tmp_path / "copy" / "n1") as recorder:
        recorder.save_tabular("odd.timestamps", {"x": 1}, timestamp=1.7e9)
    copy = cp.open_session(tmp_path / "copy")
    assert copy.stream("n1", "cam").kind == "video" and copy.stream("n1", "cam").count == 0
    assert copy.stream("n1", "odd.timestamps").kind == "tabular"
    with pytest.raises(ArchiveError, match="has no stream n1/nope; it has: "):
        copy.stream("n1", "nope")


@pytest.mark.timeout(60)
def test_a_table_named_timestamps_is_not_taken_for_an_image_folder(tmp_path):
    with Recorder(tmp_path / "s" / "w1" / "n1") as recorder:
        recorder.save_tabular("timestamps", {"x": 1.5}, timestamp=1.7e9)
        recorder.save_image("snap", np.zeros((4, 6), np.uint16), timestamp=1.7e9 + 1)
    session = cp.open_session(tmp_path / "s")
    assert {(s.worker, s.key, s.kind) for s in session.streams} == {
        ("w1", "n1/timestamps", "tabular"), ("w1", "n1/snap", "image")}
    image = session.stream("n1", "snap").image_at(1.7e9 + 2)
    assert image.dtype == np.uint16 and image.shape == (4, 6)
    assert session.stream("n1/timestamps").value(0) == {"timestamp": 1.7e9, "x": 1.5}


@pytest.mark.timeout(60)
def test_frames_of_a_variable_rate_mp4_are_found_by_their_packets(tmp_path):
    import av
    from support.archive import stamp_index

    folder = tmp_path / "s" / "w1" / "n1"
    folder.mkdir(parents=True)
    pts = [0, 1, 3, 4, 7, 8, 9, 12, 13, 20]  # in 1/30 s: not one frame every 1/30 s
    with av.open(str(folder / "cam.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = 4
        for index, when in enumerate(pts):
            frame = np.full((240, 320, 3), 60, np.uint8)
            stamp_index(frame, index)
            video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
            video_frame.pts, video_frame.time_base = when, Fraction(1, 30)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    (folder / "cam.timestamps.csv").write_text(
        "frame_index,timestamp\n" + "".join(f"{i},{1.7e9 + p / 30!r}\n" for i, p in enumerate(pts)))
    video = cp.open_session(tmp_path / "s").stream("n1", "cam")
    assert video.count == len(pts)
    assert [read_index(video.frame(i)) for i in (9, 2, 5, 6, 0)] == [9, 2, 5, 6, 0]
    assert read_index(video.frame_at(1.7e9 + 10 / 30)) == 6
