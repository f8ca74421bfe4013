"""``cp-worker --discover``: a Worker finds the Manager by zeroconf inside a private network namespace
(only its loopback, so nothing is announced on a real network), ignores announcements that claim
another certificate, and still pins and proves before it joins."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from support import netns

pytest.importorskip("zeroconf", reason="discovery needs the optional zeroconf package")
pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

reason = netns.available()
if reason:
    pytest.skip(reason, allow_module_level=True)

SCENARIO = r"""
import json, os, subprocess, sys
import chimerapy as cp
from chimerapy.net import discovery

manager = cp.Manager(logdir=sys.argv[1], port=0, host="127.0.0.1", announce=True)
decoy = discovery.announce(name="decoy", addresses=["127.0.0.1"], port=9, fingerprint="sha256:" + "0" * 64,
                           interfaces=["127.0.0.1"])
env = {**os.environ, "CHIMERAPY_TOKEN": manager.token}

def cp_worker(name, fingerprint):
    return subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--discover", "--name", name,
                             "--fingerprint", fingerprint, "--timeout", "10"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

stranger = cp_worker("stranger", "sha256:" + "1" * 64)  # pins a certificate nobody announced
lab = cp_worker("lab", manager.fingerprint)
joined = manager.wait_for_workers(["lab"], timeout=40)
workers = sorted(manager.workers)
stranger_out = stranger.communicate(timeout=40)[1]
manager.shutdown()
lab_out = lab.communicate(timeout=40)[1]
decoy.close()
print(json.dumps({"joined": joined, "workers": workers, "port": manager.port, "lab": lab_out,
                  "lab_code": lab.returncode, "stranger": stranger_out, "stranger_code": stranger.returncode}))
"""


def test_cp_worker_discovers_the_manager_it_pinned_and_ignores_other_announcements(tmp_path):
    name = f"cpdisc{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        for args in (("link", "set", "lo", "up"), ("link", "set", "lo", "multicast", "on"),
                     ("route", "add", "224.0.0.0/4", "dev", "lo")):
            subprocess.run(["ip", "netns", "exec", name, "ip", *args], check=True, timeout=30)
        script = tmp_path / "scenario.py"
        script.write_text(SCENARIO)
        result = subprocess.run(["ip", "netns", "exec", name, sys.executable, str(script), str(tmp_path / "runs")],
                                capture_output=True, text=True, timeout=100, check=False)
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["joined"] and outcome["workers"] == ["lab"], outcome
    assert f"found the Manager at 127.0.0.1:{outcome['port']}" in outcome["lab"]  # not the decoy's port 9
    assert outcome["stranger_code"] == 1 and "no Manager with that fingerprint" in outcome["stranger"], outcome
