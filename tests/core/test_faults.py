"""Faults survived: a Worker killed mid-recording, a Manager killed mid-run. Nothing recorded is lost
and no process is left behind."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import chimerapy as cp
import pytest
from chimerapy.net import auth
from chimerapy.private import scratch_base
from support import lone_manager
from support.nodes import Beacon
from support.processes import new_marker, wait_until_gone

pytestmark = pytest.mark.timeout(180)


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def cp_worker(manager, name, env, *extra):
    return subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                             str(manager.port), "--name", name, "--fingerprint", manager.fingerprint, *extra],
                            env={**env, "CHIMERAPY_TOKEN": manager.token})


def test_worker_killed_mid_recording_is_marked_lost_and_collected_when_back(make_manager):
    marker, env = new_marker()
    manager = make_manager()
    steady, doomed = cp_worker(manager, "steady", env), cp_worker(manager, "doomed", env)
    returned = None
    try:
        assert manager.wait_for_workers(["steady", "doomed"], timeout=60)
        graph = cp.Graph()
        graph.add_nodes([Beacon("beacon_steady"), Beacon("beacon_doomed")])
        assert manager.commit_graph(graph, {"steady": ["beacon_steady"], "doomed": ["beacon_doomed"]})
        manager.start()
        wait_for(lambda: manager.node_stats.get("beacon_doomed", {}).get("steps", 0) > 20, 30, "no beats")
        killed_at = time.monotonic()
        doomed.send_signal(signal.SIGKILL)
        wait_for(lambda: "doomed" in manager.status()["lost_workers"], 15, "the lost Worker was not noticed")
        assert time.monotonic() - killed_at < 10
        assert manager.node_states["beacon_doomed"] == "lost"
        started = time.monotonic()
        assert not manager.stop()  # stopped, but not everything could be collected (a falsy report)
        assert time.monotonic() - started < 30
        meta = json.loads((manager.session.path / "meta.json").read_text())
        assert meta["collected"]["steady"]["complete"]
        assert "not connected" in meta["collected"]["doomed"]["error"]
        steady_rows = list(csv.DictReader((manager.session.path / "steady" / "beacon_steady" / "beats.csv").open()))
        assert len(steady_rows) > 20
        # the Worker comes back (same name): what it recorded before dying is collected
        returned = cp_worker(manager, "doomed", env)
        assert manager.wait_for_workers(["doomed"], timeout=60)
        report = manager.collect()
        assert report["doomed"]["complete"] and report["doomed"]["files"] >= 1
        rows = list(csv.DictReader((manager.session.path / "doomed" / "beacon_doomed" / "beats.csv").open()))
        assert len(rows) > 15
        manager.shutdown()
    finally:
        for process in (steady, doomed, returned):
            if process is not None:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert wait_until_gone(marker) == []


def test_manager_killed_workers_stop_keep_their_files_and_exit(tmp_path):
    marker, env = new_marker()
    env = {**env, "CHIMERAPY_TOKEN": auth.new_token()}  # the Manager's token, as both processes inherit it
    manager = lone_manager.spawn(tmp_path / "runs", "survivor", "Beacon", env)
    worker = None
    try:
        port, fingerprint = manager.stdout.readline().split()
        worker = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", port,
                                   "--name", "survivor", "--fingerprint", fingerprint, "--reconnect-timeout", "2"],
                                  env=env)
        _, session = manager.stdout.readline().split()
        time.sleep(1.5)
        manager.send_signal(signal.SIGKILL)
        manager.wait(10)
        assert worker.wait(60) == 0  # it stopped its nodes, tried to reconnect, and left cleanly
    finally:
        for process in (manager, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    assert wait_until_gone(marker) == []
    folder = scratch_base() / "worker-survivor" / session
    rows = list(csv.DictReader((folder / "beacon" / "beats.csv").open()))
    assert len(rows) >= 10  # nothing recorded was deleted
    assert all(float(row["raw"]) > 0 for row in rows)


class CrashesAfterRecording(cp.Node):
    """Records a few rows, then its loop dies with an exception."""

    def main(self):
        for index in range(10):
            self.save_tabular("rows", {"index": index})
            time.sleep(0.02)
        raise RuntimeError("the sensor driver crashed")


def test_node_crashing_with_an_exception_is_reported_and_its_data_collected(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_nodes([CrashesAfterRecording("fragile"), Beacon("bystander")])
    assert manager.commit_graph(graph, {"w1": ["fragile", "bystander"]})
    manager.start()
    wait_for(lambda: any(e.node == "fragile" for e in manager.errors), 15, "the crash was not reported")
    error = next(e for e in manager.errors if e.node == "fragile")
    assert error.phase == "main" and "the sensor driver crashed" in error.remote_traceback
    before = manager.node_stats.get("bystander", {}).get("steps", 0)
    wait_for(lambda: manager.node_stats.get("bystander", {}).get("steps", 0) > before + 5, 10, "the rest stopped")
    assert manager.stop()
    rows = list(csv.DictReader((manager.session.path / "w1" / "fragile" / "rows.csv").open()))
    assert [int(row["index"]) for row in rows] == list(range(10))


class RestartingRecorder(cp.Node):
    restart = "on-failure"

    def prep(self):
        self.index = 0

    def step(self):
        time.sleep(0.02)
        self.save_tabular("rows", {"index": self.index})
        self.index += 1
        return self.index


class Counter(cp.Node):
    def prep(self):
        self.count = 0

    def step(self, data_chunks):
        self.count += 1


def test_a_node_with_a_restart_policy_comes_back_after_a_crash(cluster):
    manager, (worker,) = cluster("w1")
    graph = cp.Graph()
    graph.add_edge(RestartingRecorder("phoenix"), Counter("downstream"))
    assert manager.commit_graph(graph, {"w1": ["phoenix", "downstream"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("phoenix", {}).get("steps", 0) > 20, 20, "no steps")
    first = next(p for p in worker.supervisor.nodes.values() if p.name == "phoenix")
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: "restarted 1x" in str(manager.node_states.get("phoenix", "")), 30, "no restart")
    assert any(e.node == "phoenix" and e.phase == "process" for e in manager.errors)  # the crash is reported
    second = next(p for p in worker.supervisor.nodes.values() if p.name == "phoenix")
    assert second.pid != first.pid and second.restarts == 1
    wait_for(lambda: second.stats.get("steps", 0) > 20, 20, "the restarted node is idle")
    assert manager.stop()
    edge = manager.final_stats["downstream"]["inputs"]["phoenix"]
    assert edge["restarts"] == 1 and edge["out_of_order"] == 0
    assert edge["received"] >= manager.final_stats["phoenix"]["outputs"]  # the new run arrived whole
    before = list(csv.DictReader((manager.session.path / "w1" / "phoenix" / "rows.csv").open()))
    after = list(csv.DictReader((manager.session.path / "w1" / "phoenix.restart1" / "rows.csv").open()))
    assert len(before) > 10 and len(after) > 10  # the first run's recording is kept; the second has its own
