"""The Review's REST routes on a real recorded session: every stream summarised as the archive loader
reads it (frame and block times, series, markers), the session's check, and a title and notes saved
into meta.json (0600, kept by the Manager's later writes), with every bad request refused and
nothing changed."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import chimerapy as cp
import pytest
from chimerapy.archive import open_session
from chimerapy.archive.check import check_session
from support.api import bearer_client
from support.archive import ArchiveCamera, ArchiveMic

pytestmark = pytest.mark.timeout(120)
KEYS = ["camera/events", "camera/frames", "camera/notes", "camera/snap", "camera/truth", "mic/mic", "mic/truth"]


@pytest.fixture
def recorded(cluster):
    """A Manager holding a collected session: 30 fps video with its index in the pixels, a table,
    JSON, text and images from "camera"; 16 kHz audio (block k holds the value k) and a table from "mic"."""
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_nodes([ArchiveCamera("camera"), ArchiveMic("mic")])
    assert manager.commit_graph(graph, {"w1": ["camera", "mic"]})
    assert manager.start()
    deadline = time.monotonic() + 30
    while not all(manager.node_stats.get(node, {}).get("steps", 0) >= 40 for node in ("camera", "mic")):
        assert time.monotonic() < deadline, "the nodes are too slow"
        time.sleep(0.05)
    assert manager.stop()
    return manager


async def call(http, method, path, **kwargs):
    async with http.request(method, path, **kwargs) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


def test_streams_are_summarised_as_the_loader_reads_them(recorded):
    manager = recorded
    session_id = manager.session.id
    loaded = open_session(manager.session.path)
    streams = {stream.key: stream for stream in loaded.streams}

    async def scenario():
        async with bearer_client(manager) as http:
            status, overview = await call(http, "GET", f"/api/sessions/{session_id}/streams")
            assert status == 200, overview
            by_key = {item["key"]: item for item in overview["streams"]}
            assert sorted(by_key) == KEYS
            for key, item in by_key.items():
                stream = streams[key]
                assert (item["kind"], item["worker"], item["count"]) == (stream.kind, "w1", stream.count), key
                assert item["start"] == pytest.approx(stream.start, abs=1e-6) and item["count"] > 0, key
                assert item["end"] == pytest.approx(stream.end, abs=1e-6) and "error" not in item, key
            assert overview["start"] <= min(i["start"] for i in by_key.values())
            assert overview["end"] >= max(i["end"] for i in by_key.values()) and overview["review"] == {}

            video = by_key["camera/frames"]
            assert video["fps"] == pytest.approx(30, rel=1e-3) and video["media"] == "w1/camera/frames.mp4"
            assert video["times"] == pytest.approx(list(streams["camera/frames"].times), abs=1e-6)
            assert sorted(video["files"]) == ["w1/camera/frames.mp4", "w1/camera/frames.timestamps.csv"]
            async with http.get(f"/api/sessions/{session_id}/files/{video['media']}",
                                headers={"Range": "bytes=0-99"}) as response:  # a <video> seeks
                assert response.status == 206 and len(await response.read()) == 100

            table = by_key["camera/truth"]["series"]  # fewer rows than the limit: every row as it is
            assert table["columns"]["frame"] == list(range(streams["camera/truth"].count))
            assert table["columns"]["seen"] == pytest.approx(list(streams["camera/truth"].table()["seen"]), abs=1e-6)
            assert table["times"] == pytest.approx(list(streams["camera/truth"].times), abs=1e-6)

            events = by_key["camera/events"]
            assert [m["time"] for m in events["markers"]] == pytest.approx(list(streams["camera/events"].times))
            assert events["markers"][1]["label"].startswith('{"frame":10,"seen":')
            assert events["markers_total"] == streams["camera/events"].count
            assert by_key["camera/notes"]["markers"][0]["label"].startswith("frame 0 at ")
            snap = by_key["camera/snap"]["images"][0]
            assert snap["file"] == "w1/camera/snap/" + streams["camera/snap"].path(0).name
            async with http.get(f"/api/sessions/{session_id}/files/{snap['file']}") as response:
                assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")

            audio, mic = by_key["mic/mic"], streams["mic/mic"].samples()
            assert (audio["rate"], audio["channels"], audio["media"]) == (16000, 1, "w1/mic/mic.wav")
            assert audio["blocks"] == [[int(i), pytest.approx(float(t), abs=1e-6)]
                                       for i, t in zip(mic.block_index, mic.block_times)]
            peaks = audio["series"]["columns"]["ch0"]  # block k holds the value k: the peaks climb
            assert len(peaks) == len(audio["series"]["times"]) == 2000
            assert peaks[0] == 0 and peaks[-1] == pytest.approx((len(mic.block_index) - 1) / 32768)
            assert peaks == sorted(peaks) and len(set(peaks)) == len(mic.block_index)

            status, small = await call(http, "GET", f"/api/sessions/{session_id}/streams?points=10&markers=2")
            small_by_key = {item["key"]: item for item in small["streams"]}
            frames = small_by_key["camera/truth"]["series"]["columns"]["frame"]
            assert len(frames) <= 10 and min(frames) == 0 and max(frames) == streams["camera/truth"].count - 1
            assert len(small_by_key["mic/mic"]["series"]["columns"]["ch0"]) == 10
            markers = small_by_key["camera/events"]["markers"]
            assert [m["time"] for m in markers] == pytest.approx([streams["camera/events"].start,
                                                                  streams["camera/events"].end])
            for query in ("points=abc", "points=3", "markers=0", "markers=99999"):
                status, answer = await call(http, "GET", f"/api/sessions/{session_id}/streams?{query}")
                assert status == 400 and "is not a whole number" in answer["error"], query

    asyncio.run(scenario())
    loaded.close()


def test_the_report_is_read_from_meta_json_or_run(recorded):
    manager = recorded
    folder = manager.session.path
    meta = json.loads((folder / "meta.json").read_text())
    copy = shutil.copytree(folder, folder.parent / "20990101-000000-nocheck")
    without = {key: value for key, value in meta.items() if key != "check"}
    (copy / "meta.json").write_text(json.dumps(without))

    async def scenario():
        async with bearer_client(manager) as http:
            status, answer = await call(http, "GET", f"/api/sessions/{folder.name}/report")
            assert status == 200 and answer["source"] == "meta.json" and answer["report"] == meta["check"]
            assert answer["html"] is None and {s["key"] for s in answer["report"]["streams"]} == set(KEYS)

            status, rerun = await call(http, "GET", f"/api/sessions/{folder.name}/report?run=1")
            assert status == 200 and rerun["source"] == "check"
            expected = check_session(folder).as_dict()
            assert [s["count"] for s in rerun["report"]["streams"]] == [s["count"] for s in expected["streams"]]
            assert rerun["report"]["clean"] == expected["clean"]

            status, ran = await call(http, "GET", f"/api/sessions/{copy.name}/report")
            assert status == 200 and ran["source"] == "check" and ran["report"]["session"] == meta["session"]
            (copy / "report.html").write_text("<html></html>")
            status, ran = await call(http, "GET", f"/api/sessions/{copy.name}/report")
            assert ran["html"] == "report.html"

    asyncio.run(scenario())


def test_a_title_and_notes_are_saved_into_meta_json(recorded):
    manager = recorded
    folder = manager.session.path
    past = shutil.copytree(folder, folder.parent / "20990101-000000-pastrun")
    past_meta = json.loads((past / "meta.json").read_text())
    notes = "Participant 7.\nThe camera slipped at 00:42 — redo the second task.\t(ok)"

    async def scenario():
        async with bearer_client(manager) as http:
            url = f"/api/sessions/{folder.name}/notes"
            status, answer = await call(http, "PUT", url, json={"title": "  Pilot 7  ", "notes": notes})
            assert status == 200, answer
            review = answer["review"]
            assert (review["title"], review["notes"]) == ("Pilot 7", notes) and review["updated"] > 0
            status, answer = await call(http, "PUT", url, json={"notes": "only the notes"})
            assert (answer["review"]["title"], answer["review"]["notes"]) == ("Pilot 7", "only the notes")

            status, listing = await call(http, "GET", "/api/sessions")
            assert {s["id"]: s["title"] for s in listing["sessions"]}[folder.name] == "Pilot 7"
            status, overview = await call(http, "GET", f"/api/sessions/{folder.name}/streams?points=4")
            assert overview["review"]["notes"] == "only the notes"

            status, answer = await call(http, "PUT", f"/api/sessions/{past.name}/notes", json={"title": "Earlier"})
            assert status == 200 and answer["review"] == {"title": "Earlier", "notes": "",
                                                          "updated": answer["review"]["updated"]}

            before = (folder / "meta.json").read_bytes()
            refusals = [
                (b"[1]", 400, "the body is a JSON list"),
                (b"{}", 400, "the body is empty"),
                (b'{"title": "x", "author": "me"}', 400, "unknown key(s) 'author'"),
                (b'{"title": 7}', 400, "'title' is a JSON int; send it as a string"),
                (b'{"title": "two\\nlines"}', 400, "control character U+000A at position 3"),
                (b'{"notes": "bell\\u0007"}', 400, "control character U+0007"),
                (json.dumps({"title": "t" * 201}).encode(), 400, "201 characters, more than 200"),
                (json.dumps({"notes": "n" * 20_001}).encode(), 400, "20001 characters, more than 20000"),
                (json.dumps({"notes": "n" * 140_000}).encode(), 413, "larger than 131072 bytes"),
                (b"{not json", 400, "not valid JSON"),
            ]
            for body, status_expected, message in refusals:
                status, answer = await call(http, "PUT", url, data=body)
                assert status == status_expected and message in answer["error"], (body[:40], answer)
            assert (folder / "meta.json").read_bytes() == before

            for session, status_expected in (("20990101-000000-absent", 404), ("bad$name", 400)):
                status, answer = await call(http, "PUT", f"/api/sessions/{session}/notes", json={"title": "x"})
                assert status == status_expected, answer
        async with bearer_client(manager, token="wrong") as http:
            status, answer = await call(http, "PUT", f"/api/sessions/{folder.name}/notes", json={"title": "x"})
            assert status == 401
            for path in ("streams", "report"):
                status, answer = await call(http, "GET", f"/api/sessions/{folder.name}/{path}")
                assert status == 401

    asyncio.run(scenario())
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["review"]["title"] == "Pilot 7" and (folder / "meta.json").stat().st_mode & 0o777 == 0o600
    manager.collect()  # the Manager rewrites meta.json: the notes stay
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["review"]["notes"] == "only the notes" and "collected" in meta
    saved = json.loads((past / "meta.json").read_text())
    assert saved.pop("review")["title"] == "Earlier" and saved == past_meta  # nothing else changed
    assert (past / "meta.json").stat().st_mode & 0o777 == 0o600


def test_envelope_keeps_each_runs_lowest_and_highest_in_order():
    import numpy as np
    from chimerapy.archive.overview import envelope, spread

    times = np.arange(100, dtype=float)
    rising = np.arange(100, dtype=float)
    spikes = np.zeros(100)
    spikes[[13, 57]] = [9.0, -4.0]
    holes = np.full(100, np.nan)
    holes[60:] = 1.0
    out_times, columns = envelope(times, {"rising": rising, "spikes": spikes, "holes": holes}, 10)
    assert list(out_times) == [0, 19, 20, 39, 40, 59, 60, 79, 80, 99]  # each run's first and last time
    assert list(columns["rising"]) == [0, 19, 20, 39, 40, 59, 60, 79, 80, 99]  # low then high: as they came
    assert list(columns["spikes"]) == [0, 9, 0, 0, 0, -4, 0, 0, 0, 0]  # no spike lost; the 0s at 40 came before the dip
    assert np.isnan(columns["holes"][:6]).all() and list(columns["holes"][6:]) == [1, 1, 1, 1]
    same_times, same = envelope(times, {"rising": rising}, 100)
    assert same_times is times and same["rising"] is rising  # within the limit: as they are
    assert list(spread(5, 10)) == [0, 1, 2, 3, 4] and list(spread(100, 3)) == [0, 50, 99]
