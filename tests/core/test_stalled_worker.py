"""Lost and found: a Worker frozen for 20 s (SIGSTOP) then resumed (SIGCONT) reconnects and keeps
its healthy nodes running (nothing is lost; the report says when it was away), and a session
whose Manager crashed is collected by `chimerapy collect` from the Workers that kept it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import chimerapy as cp
import pytest
from support import lone_manager
from support.nodes import Ticker
from support.processes import new_marker, wait_until_gone

STALL = 20.0


class Keeper(cp.Node):
    def step(self, data_chunks):
        self.save_tabular("kept", {"i": data_chunks["ticker"].get("default")["value"]})


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def numbers(path) -> list[int]:
    text = path.read_text()
    assert text.endswith("\n")
    return [int(row["i"]) for row in csv.DictReader(text.splitlines())]


@pytest.mark.timeout(150)
def test_a_stalled_worker_resumes_its_nodes_and_the_report_says_when_it_was_away(make_manager, make_worker,
                                                                                  spawn_cp_worker):
    manager = make_manager()
    stalling = spawn_cp_worker(manager, "stalling", env={"CHIMERAPY_TOKEN": manager.token})
    make_worker("steady", manager)
    assert manager.wait_for_workers(["stalling", "steady"], timeout=60)
    graph = cp.Graph()
    graph.add_edge(Ticker("ticker"), Keeper("keeper"))
    assert manager.commit_graph(graph, {"stalling": ["ticker"], "steady": ["keeper"]})
    manager.start()
    wait_for(lambda: manager.node_stats.get("ticker", {}).get("steps", 0) > 20, 30, "the ticker does not tick")

    stalling.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        wait_for(lambda: "stalling" in manager.status()["lost_workers"], 15, "the frozen Worker was not noticed")
        assert manager.node_states["ticker"] == "lost"
        time.sleep(max(0.0, stopped_at + STALL - time.monotonic()))  # the stall itself
    finally:
        stalling.send_signal(signal.SIGCONT)
    resumed_at = time.monotonic()
    wait_for(lambda: "stalling" in manager.workers and manager.node_states.get("ticker") == "running", 30,
             "the Worker did not come back with its node running")
    print(f"back {time.monotonic() - resumed_at:.1f} s after SIGCONT")
    steps = manager.node_stats["ticker"]["steps"]
    wait_for(lambda: manager.node_stats["ticker"]["steps"] > steps + 20, 15, "the ticker stopped after the stall")
    report = manager.stop()

    assert report, str(report)  # complete: nothing was lost
    lost = [f for f in report.faults if f.kind == "worker_lost"]
    assert [(f.worker, f.data_lost) for f in lost] == [("stalling", False)]
    assert "kept running, nothing was lost" in lost[0].message and " s)" in lost[0].message
    ticks = numbers(manager.session.path / "stalling" / "ticker" / "ticks.csv")
    assert ticks == list(range(len(ticks)))  # no row missing, before, during or after the stall
    assert len(ticks) > STALL / 0.02 * 0.5  # it recorded through the stall
    assert ticks[-1] + 1 == manager.final_stats["ticker"]["steps"]
    kept = numbers(manager.session.path / "steady" / "keeper" / "kept.csv")
    assert kept == ticks  # the edge to the other Worker lost nothing either
    meta = json.loads((manager.session.path / "meta.json").read_text())
    assert meta["complete"] is True and [f["kind"] for f in meta["faults"]] == ["worker_lost"]
    manager.shutdown()
    assert stalling.wait(30) == 0


@pytest.mark.timeout(180)
def test_chimerapy_collect_brings_in_a_session_whose_manager_crashed(tmp_path):
    marker, env = new_marker()
    env["CHIMERAPY_TOKEN"] = "crash-test-token"
    logdir = tmp_path / "runs"
    manager = lone_manager.spawn(logdir, "survivor", "Ticker", env)
    worker = None
    try:
        port, _ = manager.stdout.readline().split()
        worker = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", port,
                                   "--name", "survivor"], env=env)
        _, session = manager.stdout.readline().split()
        folder = logdir / session
        wait_for(lambda: len((folder / "meta.json").read_text()) > 0 and "start_time" in (folder / "meta.json").read_text(),
                 30, "the session did not start")
        time.sleep(1.0)  # let it record a little
        manager.send_signal(signal.SIGKILL)
        manager.wait(10)
        assert not (folder / "survivor").exists()  # nothing was collected: the Manager died
        result = subprocess.run([sys.executable, "-m", "chimerapy.cli.main", "collect", str(folder), "--wait", "60"],
                                env=env, capture_output=True, text=True, timeout=150, check=False)
        print(result.stdout, result.stderr)
        assert result.returncode == 0, result.stderr
        assert "complete" in result.stdout and "manager_lost" in result.stdout
        assert worker.wait(60) == 0  # the collecting Manager shut it down when done
    finally:
        for process in (manager, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    assert wait_until_gone(marker) == []
    ticks = numbers(folder / "survivor" / "ticker" / "ticks.csv")
    assert ticks == list(range(len(ticks))) and len(ticks) > 40
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["collected"]["survivor"]["complete"] and meta["complete"] is True
    assert [f["kind"] for f in meta["faults"]] == ["manager_lost"]
    assert os.listdir(folder / "survivor") == ["ticker"]
