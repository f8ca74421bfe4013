"""Preview, record, and further recordings of one committed pipeline (Manager.preview/record/start)."""

from __future__ import annotations

import asyncio
import csv
import json
import time

import chimerapy as cp
import pytest
from chimerapy.api.sessions import list_sessions
from chimerapy.errors import StateError
from chimerapy.worker.worker import Worker
from support.api import bearer_client
from support.archive import wait_for
from support.nodes import JsonSink, PrepCountingCamera, Tunable, prep_pids

pytestmark = pytest.mark.timeout(150)


def camera_graph(prep_log):
    camera, sink = PrepCountingCamera("camera", prep_log), JsonSink("sink")
    graph = cp.Graph()
    graph.add_edge(camera, sink)
    return graph


def stats(manager, node):
    return manager.status()["nodes"][node]["stats"]


def preview_calls(manager, node, record):
    return stats(manager, node).get("preview_saves", {}).get(record, {}).get("calls", 0)


def written(manager, node, record):
    return stats(manager, node).get("records", {}).get(record, {}).get("written", 0)


def record_files(folder):
    """Every file under ``folder`` except the session's own meta.json and log."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name not in ("meta.json", "chimerapy.log"))


def rows_of(path):
    with path.open(newline="") as file:
        return [(float(row["timestamp"]), int(row["i"])) for row in csv.DictReader(file)]


def test_preview_counts_saves_and_writes_nothing_then_record_saves_in_the_same_processes(cluster, tmp_path):
    manager, (worker,) = cluster("w1")
    prep_log = tmp_path / "preps.txt"
    assert manager.commit_graph(camera_graph(prep_log), {"w1": ["camera", "sink"]})
    session = manager.session.id
    assert manager.preview() and manager.state == "preview"
    wait_for(lambda: preview_calls(manager, "camera", "rows") >= 10 and preview_calls(manager, "sink", "seen") >= 5,
             30, "the preview's save_* calls were not counted")

    # data flows, previews are live, every save_* is counted per node and record, nothing is written
    camera = stats(manager, "camera")
    assert camera["recording"] is False and camera["steps"] >= 10 and camera["records"] == {}
    assert camera["preview_saves"]["video"]["kind"] == "video" and camera["preview_saves"]["rows"]["kind"] == "tabular"
    assert stats(manager, "sink")["preview_saves"]["seen"]["kind"] == "json"
    wait_for(lambda: "frame" in manager.previews.get("camera", {}), 10, "no live thumbnail during the preview")
    assert manager.node_states["camera"] == "preview"
    assert not worker.files.session_dir(session).exists()  # no record file, no empty record folder
    assert record_files(manager.logdir) == []
    pid = manager.gather()["camera"].get("pid")["value"]
    with pytest.raises(StateError, match="call record"):
        manager.step()

    assert manager.record() and manager.state == "running"
    wait_for(lambda: written(manager, "camera", "rows") >= 10 and written(manager, "sink", "seen") >= 5, 30,
             "nothing was written after record()")
    assert manager.gather()["camera"].get("pid")["value"] == pid  # the same process: not restarted
    assert prep_pids(prep_log) == [pid]  # and prep ran once
    report = manager.stop()
    assert report and report["w1"]["complete"]

    folder = manager.logdir
    assert folder.name == session
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["preview_time"] < meta["start_time"] < meta["stop_time"] and meta["recorded"] is True
    counted = manager.final_stats["camera"]["preview_saves"]["rows"]["calls"]
    rows = rows_of(folder / "w1" / "camera" / "rows.csv")
    # only what was saved after record began: the counted calls were i = 0 .. counted-1, every later one is written
    assert counted >= 10 and [i for _, i in rows] == list(range(counted, counted + len(rows)))
    assert all(meta["start_time"] <= when <= meta["stop_time"] for when, _ in rows)
    video_times = rows_of_video(folder / "w1" / "camera" / "video.timestamps.csv")
    assert video_times and min(video_times) >= meta["start_time"]
    seen = [json.loads(line) for line in (folder / "w1" / "sink" / "seen.jsonl").read_text().splitlines()]
    assert seen and all(item["timestamp"] >= meta["start_time"] for item in seen)
    assert manager.final_stats["sink"]["preview_saves"]["seen"]["calls"] >= 5


def rows_of_video(path):
    with path.open(newline="") as file:
        return [float(row["timestamp"]) for row in csv.DictReader(file)]


def test_stop_then_start_makes_a_further_recording_in_a_session_folder_of_its_own(cluster, tmp_path):
    manager, _ = cluster("w1")
    prep_log = tmp_path / "preps.txt"
    assert manager.commit_graph(camera_graph(prep_log), {"w1": ["camera", "sink"]})
    folders = []
    for _ in range(2):
        assert manager.start() and manager.state == "running"
        wait_for(lambda: written(manager, "camera", "rows") >= 5, 30, "the recording wrote nothing")
        report = manager.stop()
        assert report and report["w1"]["complete"]
        assert manager.collect()  # 0.0.10: collect() after stop() is harmless
        folders.append(manager.logdir)

    first, second = folders
    assert first != second and first.parent == second.parent == manager.root_logdir
    metas = [json.loads((folder / "meta.json").read_text()) for folder in folders]
    assert metas[1]["follows"] == first.name and "follows" not in metas[0]
    assert metas[0]["pipeline"]["nodes"] == metas[1]["pipeline"]["nodes"] and metas[1]["graph"] == metas[0]["graph"]
    assert metas[0]["stop_time"] < metas[1]["start_time"]
    for folder, meta in zip(folders, metas):
        assert meta["session"] == folder.name and meta["collected"]["w1"]["complete"] and meta["complete"]
        rows = rows_of(folder / "w1" / "camera" / "rows.csv")
        assert [i for _, i in rows] == list(range(len(rows))) and len(rows) >= 5  # a fresh prep: from 0
        assert all(meta["start_time"] <= when <= meta["stop_time"] for when, _ in rows)
        assert (folder / "w1" / "sink" / "seen.jsonl").stat().st_size > 0
        assert {"rows.csv", "video.mp4", "video.timestamps.csv"} <= {p.name for p in (folder / "w1" / "camera").iterdir()}
    first_pid, second_pid = prep_pids(prep_log)  # the nodes were spawned again: a prep each
    assert first_pid != second_pid
    assert {first.name, second.name} <= {entry["id"] for entry in list_sessions(manager.root_logdir)}

    # a preview after a stop: a session of its own in which nothing is recorded
    assert manager.preview() and manager.logdir not in folders
    wait_for(lambda: preview_calls(manager, "camera", "rows") >= 3, 30, "the preview did not run")
    assert manager.stop()
    third = json.loads((manager.logdir / "meta.json").read_text())
    assert third["recorded"] is False and third["follows"] == second.name and "start_time" not in third
    assert manager.check is not None and manager.check.clean, manager.check
    assert record_files(manager.logdir) == []
    assert len(prep_pids(prep_log)) == 3


def test_calls_out_of_order_and_shutdown_from_a_preview(cluster, tmp_path):
    manager, _ = cluster("w1")
    for call in (manager.preview, manager.record, manager.start):
        with pytest.raises(StateError, match="commit_graph"):
            call()
    graph = camera_graph(tmp_path / "preps.txt")
    graph.add_node(Tunable("tune"))
    assert manager.commit_graph(graph, {"w1": ["camera", "sink", "tune"]})
    assert manager.preview()
    with pytest.raises(StateError, match="preview"):
        manager.preview()
    assert manager.request_registered_method("tune", "set_level", {"level": 3.0}) == 1.0  # adjust while previewing
    wait_for(lambda: manager.gather()["tune"].get("level")["value"] == 3.0, 10, "the method did not act")
    with pytest.raises(StateError, match="stop"):
        manager.commit_graph(camera_graph(tmp_path / "other.txt"), {"w1": ["camera", "sink"]})
    wait_for(lambda: preview_calls(manager, "camera", "rows") >= 3, 30, "the preview did not run")
    manager.shutdown()  # from a preview: every node process ends (the autouse fixture checks it)
    assert manager.state == "shutdown"
    assert record_files(manager.logdir) == []


def test_rest_routes_preview_record_and_start_after_stop(cluster, tmp_path):
    manager, _ = cluster("w1")
    assert manager.commit_graph(camera_graph(tmp_path / "preps.txt"), {"w1": ["camera", "sink"]})
    first = manager.session.id

    async def call(http, path):
        async with http.post(path) as response:
            return response.status, await response.json()

    async def scenario():
        async with bearer_client(manager) as http:
            assert await call(http, "/api/preview") == (200, {"state": "preview", "session": first})
            status, answer = await call(http, "/api/preview")
            assert status == 409 and "while the cluster is preview" in answer["error"]
            async with http.post("/api/pipeline", json={}) as response:
                assert response.status == 409
            await asyncio.to_thread(wait_for, lambda: preview_calls(manager, "camera", "rows") >= 3, 30,
                                    "the preview did not run")
            async with http.get("/api/state") as response:
                camera = (await response.json())["nodes"]["camera"]
            assert camera["state"] == "preview" and camera["stats"]["preview_saves"]["rows"]["calls"] >= 3
            assert await call(http, "/api/record") == (200, {"state": "running", "session": first})
            await asyncio.to_thread(wait_for, lambda: written(manager, "camera", "rows") >= 3, 30,
                                    "the recording wrote nothing")
            status, answer = await call(http, "/api/stop")
            assert status == 200 and answer["complete"]
            status, answer = await call(http, "/api/start")  # after a stop: a further recording
            assert status == 200 and answer["state"] == "running" and answer["session"] != first
            await asyncio.to_thread(wait_for, lambda: written(manager, "camera", "rows") >= 3, 30,
                                    "the second recording wrote nothing")
            status, answer = await call(http, "/api/stop")
            assert status == 200 and answer["complete"]
            async with http.get("/api/sessions") as response:
                listed = [entry["id"] for entry in (await response.json())["sessions"]]
            assert first in listed and manager.session.id in listed

    asyncio.run(scenario())


def test_a_previewing_runtime_counts_saves_then_writes_each_later_one(tmp_path):
    from chimerapy.errors import RecordError
    from chimerapy.testing import NodeHarness

    with NodeHarness(PrepCountingCamera("camera", tmp_path / "preps.txt", period=0), directory=tmp_path / "out") as harness:
        harness.runtime.recording = False  # what a Worker's start {"record": false} sets
        harness.run(4)
        with pytest.raises(RecordError, match="bad/name"):  # a record name is checked in a preview too
            harness.node.save_json("bad/name", {})
        assert harness.runtime.stats()["preview_saves"] == {"rows": {"kind": "tabular", "calls": 4},
                                                            "video": {"kind": "video", "calls": 4}}
        assert not (tmp_path / "out").exists()
        harness.runtime.begin_recording(at=123.0)
        harness.run(3)
        stats = harness.runtime.stats()
        assert stats["recording"] and harness.runtime.recording_since == 123.0
        assert stats["preview_saves"]["rows"]["calls"] == 4 and stats["records"]["rows"]["queued"] == 3
    assert [i for _, i in rows_of(tmp_path / "out" / "rows.csv")] == [4, 5, 6]


class UsesHelpers(cp.Node):
    """Saves, every 20 ms, a row with the VALUE of the shipped package ``helpers`` (imported in prep)."""

    def prep(self):
        import helpers

        self.value = helpers.VALUE

    def step(self):
        time.sleep(0.02)
        self.save_tabular("values", {"value": self.value})


def test_a_further_recording_on_a_worker_started_anew_gets_the_shipped_packages_again(
        make_manager, make_worker, tmp_path, monkeypatch):
    installs = []
    original = Worker._install_packages

    async def counting(self, data):
        installs.extend(p["name"] for p in data["packages"])
        return await original(self, data)

    monkeypatch.setattr(Worker, "_install_packages", counting)
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("VALUE = 7\n")
    manager = make_manager()
    first_worker = make_worker("w1", manager)
    graph = cp.Graph()
    graph.add_node(UsesHelpers("user"))
    assert manager.commit_graph(graph, {"w1": ["user"]}, send_packages=[{"name": "helpers", "path": str(tmp_path / "helpers")}],
                                strict=True)
    assert manager.start()
    wait_for(lambda: written(manager, "user", "values") >= 3, 30, "the first recording wrote nothing")
    assert manager.stop()
    first_worker.shutdown()  # its packages go with its temporary folder
    wait_for(lambda: "w1" not in manager.workers, 10, "the Manager did not see the Worker go")
    with pytest.raises(cp.CommitError, match=r"Worker\(s\) \['w1'\] are not connected"):
        manager.start()
    assert manager.state == "stopped"
    make_worker("w1", manager)  # a new Worker process of the same name
    assert manager.wait_for_workers(["w1"], timeout=10)
    assert manager.start()
    wait_for(lambda: written(manager, "user", "values") >= 3, 30, "the further recording wrote nothing")
    assert manager.stop()
    assert installs == ["helpers", "helpers"]  # offered again, installed by the Worker that lacked it
    with (manager.logdir / "w1" / "user" / "values.csv").open(newline="") as file:
        assert {row["value"] for row in csv.DictReader(file)} == {"7"}
