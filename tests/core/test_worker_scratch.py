"""Two Workers of one name (and user) on one host at once: each records into a folder of its own,
so one ending never deletes what the other has not sent; the name's folder goes to the next Worker
of that name once its holder is gone, also when it was killed."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import chimerapy as cp
import pytest
from chimerapy.private import scratch_base
from support.nodes import Beacon

pytestmark = pytest.mark.timeout(120)


def rows_of(manager, worker):
    return list(csv.DictReader((manager.logdir / worker / "beacon" / "beats.csv").open()))


def test_two_live_workers_of_one_name_keep_their_recordings_apart(tmp_path, make_manager, make_worker):
    first, second = make_manager(logdir=tmp_path / "a"), make_manager(logdir=tmp_path / "b")
    one, two = make_worker("twin", first), make_worker("twin", second)
    assert one.tempdir == scratch_base() / "worker-twin"
    assert two.tempdir == scratch_base() / "worker-twin~2"
    for manager in (first, second):
        graph = cp.Graph()
        graph.add_node(Beacon("beacon"))
        assert manager.commit_graph(graph, {"twin": ["beacon"]})
        manager.start()
    recording = two.tempdir / second.session.id / "beacon" / "beats.csv"
    deadline = time.monotonic() + 30
    while not (recording.exists() and recording.stat().st_size > 100):
        assert time.monotonic() < deadline, "the second Worker's node never recorded"
        time.sleep(0.05)

    assert first.stop()
    first.shutdown()
    one.shutdown()  # the first Worker leaves and deletes its folder, not the other's
    assert not one.tempdir.exists() and recording.exists()

    time.sleep(0.3)
    assert second.stop()  # complete: every row the second Worker recorded arrived
    assert len(rows_of(first, "twin")) >= 5 and len(rows_of(second, "twin")) >= 10

    three = make_worker("twin")  # the name's folder is free again
    assert three.tempdir == scratch_base() / "worker-twin"


HOLDER = """
import sys, time
import chimerapy as cp
worker = cp.Worker(sys.argv[1], port=0)
(worker.tempdir / "kept").mkdir()
(worker.tempdir / "kept" / "rows.csv").write_text("a\\n1\\n")
print(worker.tempdir, flush=True)
time.sleep(600)
"""


def test_a_killed_workers_folder_and_recordings_go_to_its_successor(tmp_path, make_worker):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), "phoenix"], stdout=subprocess.PIPE, text=True)
    try:
        folder = holder.stdout.readline().strip()
        assert folder == str(scratch_base() / "worker-phoenix")
        assert make_worker("phoenix").tempdir.name == "worker-phoenix~2"  # held while it lives
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    successor = make_worker("phoenix")
    try:
        assert str(successor.tempdir) == folder
        assert (successor.tempdir / "kept" / "rows.csv").read_text() == "a\n1\n"
        assert successor.files.unconfirmed() == [successor.tempdir / "kept"]
    finally:
        shutil.rmtree(successor.tempdir / "kept")
