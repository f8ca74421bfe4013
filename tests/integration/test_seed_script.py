"""The seed API script runs across two `cp-worker` processes, losslessly, leaving nothing behind."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support.processes import processes_marked

SCRIPT = Path(__file__).with_name("seed_script.py")


@pytest.mark.timeout(180)
def test_seed_script_on_two_cp_workers(tmp_path):
    marker = uuid.uuid4().hex
    env = {**os.environ, "CHIMERAPY_TEST_MARK": marker}
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "3"], env=env,
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "codes [0, 0]" in result.stdout  # both cp-worker processes exited cleanly
    sent = json.loads((tmp_path / "source.json").read_text())["sent"]
    seen = json.loads((tmp_path / "sink.json").read_text())["seen"]
    assert sent > 100
    assert seen == list(range(sent))  # every chunk, in order, counted equal at both ends
    deadline = time.monotonic() + 5
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_marked(marker) == []  # no Worker or node process survived
    sessions = [path for path in (tmp_path / "runs").iterdir() if path.name != ".chimerapy"]  # (the Manager's keys)
    assert len(sessions) == 1 and (sessions[0] / "meta.json").exists()
