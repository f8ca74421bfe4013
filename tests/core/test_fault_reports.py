"""Every fault ends in a report that names it, and nothing else is lost: an output that cannot be
sent, a node killed at stop, a torn row, a full disk (a small tmpfs); collecting twice merges."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import chimerapy as cp
import pytest
from chimerapy.errors import RecordError
from chimerapy.records import Recorder
from support.nodes import Beacon
from support.requirements import missing

pytestmark = pytest.mark.timeout(120)


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def archive_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def rows(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), f"{path} ends in a torn row"
    return list(csv.DictReader(text.splitlines()))


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted on ``folder`` (as root), unmounted afterwards."""
    if os.geteuid() != 0:
        missing("root, to mount a small tmpfs")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


class SometimesUnsendable(cp.Node):
    """Every 5th output holds a lock and every 7th a generator: neither can be serialised."""

    def prep(self):
        self.i = 0

    def step(self):
        time.sleep(0.01)
        chunk = cp.DataChunk()
        chunk.add("i", self.i)
        if self.i % 5 == 0:
            chunk.add("lock", threading.Lock())
        elif self.i % 7 == 0:
            chunk.add("gen", (n for n in range(3)))
        self.i += 1
        return chunk


class Keeper(cp.Node):
    def step(self, data_chunks):
        self.save_tabular("got", {"i": data_chunks["unsendable"].get("i")["value"]})


def test_an_unsendable_output_is_dropped_counted_and_reported_and_the_node_goes_on(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(SometimesUnsendable("unsendable"), Keeper("keeper"))
    assert manager.commit_graph(graph, {"w1": ["unsendable", "keeper"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("unsendable", {}).get("steps", 0) > 80, 30, "the node stopped")
    report = manager.stop()
    stats = manager.final_stats["unsendable"]
    steps = stats["steps"]
    dropped = sum(1 for i in range(steps) if i % 5 == 0 or i % 7 == 0)
    assert stats["dropped_outputs"] == dropped and stats["outputs"] == steps - dropped
    assert set(stats["dropped_records"]) == {"lock", "gen"} and "cannot be pickled" in stats["dropped_records"]["lock"]
    sends = [e for e in manager.errors if e.phase == "send"]
    assert sends and all(e.node == "unsendable" and e.worker == "w1" for e in sends)
    assert "record 'lock'" in sends[0].remote_traceback and "lock" in sends[0].remote_traceback.lower()
    edge = manager.final_stats["keeper"]["inputs"]["unsendable"]
    assert edge["lost"] == 0 and edge["received"] == steps - dropped  # nothing else was lost: no gap either
    got = [int(row["i"]) for row in rows(manager.session.path / "w1" / "keeper" / "got.csv")]
    assert got == [i for i in range(steps) if i % 5 and i % 7]
    faults = {(f.kind, f.node, f.record) for f in report.faults}
    assert {("unsendable_output", "unsendable", "lock"), ("unsendable_output", "unsendable", "gen")} <= faults
    assert report  # the archive is complete: the dropped outputs are reported, not lost data
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert {(f["kind"], f["record"]) for f in meta["faults"]} >= {("unsendable_output", "lock"), ("unsendable_output", "gen")}
    assert meta["complete"] is True


def test_a_session_stopped_and_not_yet_collected_is_never_called_complete(cluster):
    """The dashboard's stop is ``stop(collect=False)`` then ``collect()``: in between, the archive
    list must not show the session as complete while its files are still on the Worker."""
    from chimerapy.api.sessions import list_sessions

    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(Beacon("beacon"))
    assert manager.commit_graph(graph, {"w1": ["beacon"]})
    manager.start()
    time.sleep(0.5)
    stopped = manager.stop(collect=False)
    assert stopped and not stopped.complete and stopped.uncollected == ["w1"]  # stopped well; not collected
    assert "not collected yet from Worker(s) w1" in str(stopped)
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert meta["complete"] is False and not (manager.session.path / "w1").exists()
    (listed,) = list_sessions(manager.session.path.parent)
    assert listed["complete"] is False and listed["collected"] == {}
    report = manager.collect()
    assert report.complete and report.uncollected == []
    assert (manager.session.path / "w1" / "beacon" / "beats.csv").is_file()
    (listed,) = list_sessions(manager.session.path.parent)
    assert listed["complete"] is True


class Stubborn(cp.Node):
    """Records rows and ignores the stop: its Worker has to end its process."""

    def main(self):
        index = 0
        while True:
            self.save_tabular("rows", {"i": index})
            index += 1
            time.sleep(0.02)


@pytest.mark.timeout(150)
def test_a_node_killed_at_stop_is_in_the_report_and_in_meta_json(cluster):
    manager, _ = cluster("w1", drain_timeout=0.5)
    graph = cp.Graph()
    graph.add_nodes([Stubborn("stubborn"), Beacon("bystander")])
    assert manager.commit_graph(graph, {"w1": ["stubborn", "bystander"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("bystander", {}).get("steps", 0) > 20, 30, "no beats")
    report = manager.stop()
    assert not report and not report.stopped
    killed = [f for f in report.faults if f.kind == "killed_at_stop"]
    assert [(f.node, f.worker, f.data_lost) for f in killed] == [("stubborn", "w1", True)]
    assert "did not stop within its grace period" in killed[0].message and "killed" in killed[0].message
    assert manager.node_states["stubborn"] == "killed at stop"
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert meta["complete"] is False
    assert [f["node"] for f in meta["faults"] if f["kind"] == "killed_at_stop"] == ["stubborn"]
    assert meta["collected"]["w1"]["complete"]  # what it had written is archived
    assert len(rows(manager.session.path / "w1" / "stubborn" / "rows.csv")) > 20
    assert len(rows(manager.session.path / "w1" / "bystander" / "beats.csv")) > 20
    assert not [f for f in archive_files(manager.session.path) if f.endswith((".part", ".tmp"))]


def test_a_torn_row_and_a_partial_file_are_cut_off_reported_and_collect_merges(cluster):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_node(Beacon("beacon"))
    assert manager.commit_graph(graph, {"w1": ["beacon"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("beacon", {}).get("steps", 0) > 10, 30, "no beats")
    assert manager.stop(collect=False)
    scratch = worker.tempdir / manager.session.id / "beacon"
    whole = (scratch / "beats.csv").read_bytes()
    with (scratch / "beats.csv").open("ab") as file:  # a row cut mid-line, as a full disk or a kill leaves it
        file.write(b"1764370000.12,17643")
    (scratch / ".beats.json.tmp").write_bytes(b'{"half": ')  # an atomic write that never finished
    report = manager.collect()
    assert not report and not report.complete
    torn = [f for f in report.faults if f.kind == "torn_row"]
    assert [(f.worker, f.node, f.path, f.data_lost) for f in torn] == [("w1", "beacon", "beacon/beats.csv", True)]
    assert "19 bytes" in torn[0].message
    partial = [f for f in report.faults if f.kind == "partial_file"]
    assert [f.path for f in partial] == ["beacon/.beats.json.tmp"]
    archived = manager.session.path / "w1" / "beacon" / "beats.csv"
    assert archived.read_bytes() == whole and len(rows(archived)) > 10
    assert not [f for f in archive_files(manager.session.path) if f.endswith((".part", ".tmp"))]
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert {f["kind"] for f in meta["faults"]} >= {"torn_row", "partial_file"} and meta["complete"] is False
    first = meta["collected"]["w1"]
    assert first["complete"] and first["files"] == 1
    # collecting again merges the entry: the files counted before stay counted
    again = manager.collect()
    entry = json.loads((manager.session.path / "meta.json").read_text())["collected"]["w1"]
    assert entry["files"] == first["files"] and entry["bytes"] == first["bytes"] and entry["attempts"] == 2
    assert again["w1"]["complete"]


class Bulky(cp.Node):
    """Writes ~4 MB of text: more than the small disk under the logdir holds."""

    def prep(self):
        self.n = 0

    def step(self):
        time.sleep(0.005)
        if self.n < 40:
            self.save_text("bulk", "x" * 100_000 + "\n")
            self.n += 1


@pytest.mark.timeout(150)
def test_a_full_disk_under_the_logdir_ends_in_a_report_and_collecting_again_merges(make_manager, make_worker, tmp_path):
    with tmpfs(tmp_path / "small", "2m") as logdir:
        manager = make_manager(logdir=logdir)
        make_worker("big", manager)
        make_worker("small", manager)
        graph = cp.Graph()
        graph.add_nodes([Bulky("bulky"), Beacon("beacon")])
        assert manager.commit_graph(graph, {"big": ["bulky"], "small": ["beacon"]})
        manager.start()
        wait_for(lambda: manager.node_stats.get("bulky", {}).get("records", {}).get("bulk", {}).get("written", 0) >= 40,
                 30, "the bulky node did not write")
        wait_for(lambda: manager.node_stats.get("beacon", {}).get("steps", 0) > 10, 30, "no beats")
        report = manager.stop()  # does not raise
        assert not report
        full = [f for f in report.faults if f.kind == "disk_full"]
        assert full and full[0].worker == "big" and full[0].path == "bulky/bulk.txt" and full[0].data_lost
        assert "no space left" in full[0].message
        assert report["big"]["missing"] == ["bulky/bulk.txt"] and not report["big"]["complete"]
        assert report["small"]["complete"]
        leftovers = [f for f in archive_files(logdir) if f.endswith((".part", ".tmp"))]
        assert leftovers == []
        meta = json.loads((manager.session.path / "meta.json").read_text())
        assert meta["complete"] is False and any(f["kind"] == "disk_full" for f in meta["faults"])
        small_before = meta["collected"]["small"]
        # room again: collecting again brings the missing file and merges, never overwrites
        subprocess.run(["mount", "-o", "remount,size=64m", str(logdir)], check=True)
        again = manager.collect()
        assert again, str(again)
        meta = json.loads((manager.session.path / "meta.json").read_text())
        assert meta["complete"] is True
        assert meta["collected"]["small"]["files"] == small_before["files"] and meta["collected"]["small"]["complete"]
        assert meta["collected"]["big"]["complete"] and meta["collected"]["big"]["attempts"] == 2
        bulk = manager.session.path / "big" / "bulky" / "bulk.txt"
        assert bulk.stat().st_size == 40 * 100_001
        assert [f["data_lost"] for f in meta["faults"] if f["kind"] == "disk_full"] == [False]
        manager.shutdown()


def test_a_csv_on_a_full_disk_keeps_whole_rows_and_reports_the_record(tmp_path):
    errors: list[RecordError] = []
    with tmpfs(tmp_path / "tiny", "64k") as folder:
        recorder = Recorder(folder / "rec", on_error=errors.append, flush_interval=0.01)
        try:
            for index in range(20_000):
                try:
                    recorder.save_tabular("sensor", {"i": index, "pad": "y" * 50})
                except RecordError:
                    break  # the record was closed after the writer failed
                if index % 100 == 0:
                    time.sleep(0.005)
        finally:
            recorder.close()
        assert errors and errors[0].record == "sensor" and "No space left" in str(errors[0])
        lines = rows(folder / "rec" / "sensor.csv")  # ends in a whole row
        assert [int(line["i"]) for line in lines] == list(range(len(lines))) and len(lines) > 100


def test_merging_collects_never_overwrites_an_entry():
    from chimerapy.manager.report import merge_collected

    first = merge_collected(None, {"files": 3, "bytes": 30, "retries": 0, "missing": ["n/a.csv"], "error": None,
                                   "complete": False, "listed": ["n/a.csv", "n/b.csv", "n/c.csv", "n/d.csv"]})
    assert "listed" not in first and first["attempts"] == 1 and not first["complete"]
    unreachable = merge_collected(first, {"files": 0, "bytes": 0, "retries": 0, "missing": [],
                                          "error": "the Worker is not connected", "complete": False})
    assert (unreachable["files"], unreachable["missing"], unreachable["error"]) == (3, ["n/a.csv"],
                                                                                   "the Worker is not connected")
    back = merge_collected(unreachable, {"files": 1, "bytes": 10, "retries": 1, "missing": [], "error": None,
                                         "complete": True, "listed": ["n/a.csv"]})
    assert back == {"files": 4, "bytes": 40, "retries": 1, "missing": [], "error": None, "attempts": 3,
                    "complete": True}
    # a Worker complete before and unreachable now stays complete: it had nothing left to give
    again = merge_collected(back, {"files": 0, "bytes": 0, "retries": 0, "missing": [], "error": "gone",
                                   "complete": False})
    assert again["complete"] and again["files"] == 4 and again["attempts"] == 4


def test_trim_torn_row_keeps_whole_lines_only(tmp_path):
    from chimerapy.worker.files import trim_torn_row

    whole = tmp_path / "whole.csv"
    whole.write_bytes(b"a,b\n1,2\n")
    torn = tmp_path / "torn.csv"
    torn.write_bytes(b"a,b\n1,2\n3," + b"9" * 100_000)
    assert trim_torn_row(whole) == 0 and whole.read_bytes() == b"a,b\n1,2\n"
    assert trim_torn_row(torn) == 100_002 and torn.read_bytes() == b"a,b\n1,2\n"


def test_images_on_a_full_disk_leave_no_temporary_file(tmp_path):
    import numpy as np

    errors: list[RecordError] = []
    with tmpfs(tmp_path / "tiny", "256k") as folder:
        recorder = Recorder(folder / "rec", on_error=errors.append, flush_interval=0.01)
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)  # ~12 KB as PNG
        try:
            for _ in range(100):
                try:
                    recorder.save_image("frames", noise)
                except RecordError:
                    break
                time.sleep(0.002)
        finally:
            recorder.close()
        assert errors and errors[0].record == "frames" and "No space left" in str(errors[0])
        assert [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")] == []
