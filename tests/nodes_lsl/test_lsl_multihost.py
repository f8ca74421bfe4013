"""LSL across hosts (network namespaces): an inlet on one host reads an outlet on another, found
through LSL's KnownPeers, with every sample on the Manager's clock."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import chimerapy as cp
import numpy as np
import pytest
from chimerapy_nodes_lsl import LslInlet
from lsl_helpers import CHANNELS, RATE, expected_sample, sample_index, write_config
from support import netns
from support.nodes import Collector, collected
from support.processes import end_process, new_marker, wait_until_gone
from test_lsl_pipelines import read_recording, wait_for_rows

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

reason = netns.available()
if reason:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must be able to create network namespaces: {reason}")
    pytest.skip(reason, allow_module_level=True)

HELPERS = Path(__file__).with_name("lsl_helpers.py")


@pytest.fixture
def two_hosts():
    hosts = netns.Hosts(2)
    yield hosts.hosts
    hosts.close()


@pytest.fixture
def processes():
    """Start processes (ended after the test, none left behind)."""
    marker, marked = new_marker()
    started: list[subprocess.Popen] = []

    def start(command: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(command, env={**marked, **env}, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.stdin:
            process.stdin.close()
        end_process(process, grace=30)
    assert wait_until_gone(marker) == []


def host_config(folder: Path, host: netns.Host, peer: netns.Host, session: str) -> str:
    folder.mkdir(mode=0o700)
    return str(write_config(folder, session=session, peers=(peer.address,), listen=host.address))


def test_an_inlet_on_one_host_reads_an_outlet_on_another(make_manager, two_hosts, processes, tmp_path):
    alpha, beta = two_hosts
    session = f"chimerapy-netns-{uuid.uuid4().hex[:8]}"
    seconds, count = 2.0, 2000
    name = f"cp-{uuid.uuid4().hex[:8]}"
    # the outlet: its own process on host alpha
    outlet = processes(
        alpha.command(sys.executable, str(HELPERS), name, str(seconds)),
        {"LSLAPICFG": host_config(tmp_path / "alpha", alpha, beta, session)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert outlet.stdout.readline().strip() == "ready"
    # the inlet: a Worker on host beta
    manager = make_manager(host="0.0.0.0")
    beta_tmp = tmp_path / "beta-tmp"
    beta_tmp.mkdir(mode=0o700)
    processes(
        beta.command(sys.executable, "-m", "chimerapy.cli.worker", "--ip", beta.gateway, "--port",
                     str(manager.port), "--name", "beta", "--fingerprint", manager.fingerprint),
        {"LSLAPICFG": host_config(tmp_path / "beta", beta, alpha, session), "TMPDIR": str(beta_tmp),
         "CHIMERAPY_TOKEN": manager.token},
    )
    assert manager.wait_for_workers(["beta"], timeout=90)
    inlet = LslInlet("eeg", stream=name, record=True, record_name="eeg", resolve_timeout=30)
    graph = cp.Graph()
    graph.add_edge(inlet, Collector("sink", tmp_path / "sink"))
    assert manager.commit_graph(graph, {"beta": ["eeg", "sink"]})
    assert manager.start()
    _, start, _, offset = outlet.stdout.readline().split()  # the outlet saw the inlet connect
    assert outlet.stdout.readline().strip() == f"pushed {count}"
    wait_for_rows(beta_tmp, "eeg", "eeg", count, timeout=30)  # in the Worker's scratch folder
    assert manager.stop()
    assert manager.errors == [], [error.remote_traceback for error in manager.errors]
    chunks = [values for producer, _, values, _ in collected(tmp_path / "sink") if producer == "eeg"]
    description = chunks[0]["description"]
    assert description["hostname"] and description["name"] == name
    recording = read_recording(tmp_path / "runs", "eeg", "eeg")
    samples = np.stack([recording[f"C{c}"] for c in range(CHANNELS)], axis=1)
    k = sample_index(samples)
    np.testing.assert_array_equal(k, np.arange(count))
    np.testing.assert_array_equal(samples, expected_sample(k))
    expected = float(start) + k / RATE + float(offset)  # the namespaces share this host's clocks
    error = np.abs(recording["time"] - expected)
    assert error.max() < 1e-3, f"recorded times off by up to {error.max() * 1e3:.3f} ms"
