"""Runner for dora-rs 1.1.0: write ``dataflow.yml``, ``dora run`` it, stop it with Ctrl-C.

``setup`` is the time from launching ``dora run`` until every node is up (dora has no
separate commit step), ``stop`` the time from Ctrl-C until ``dora run`` has exited.
Zenoh multicast scouting is turned off with a config overlay so everything stays on
loopback, and every sending node gets a shared-memory pool that holds many frames.
Shared-memory files that dora leaves in ``/dev/shm`` are removed afterwards.

Usage: ``python -m benchmarks.workers.dora_runner SPEC.json`` (dora's venv Python).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.probe import payload_nbytes
from benchmarks.spec import RunSpec
from benchmarks.workers.dora_node import OUTPUT, go_path, ready_path
from benchmarks.workers.harness import Run, run_main

NODE_SCRIPT = Path(__file__).with_name("dora_node.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
ZENOH_OVERLAY = "{ scouting: { multicast: { enabled: false } } }\n"
POOL_FRAMES = 16
POOL_MIN_MB = 64
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
SHM_DIR = Path("/dev/shm")


def pool_size(spec: RunSpec) -> str:
    """A ``shared_memory_pool_size`` that holds ``POOL_FRAMES`` payloads."""
    megabytes = max(POOL_MIN_MB, math.ceil(POOL_FRAMES * payload_nbytes(spec.payload) / 2**20))
    return f"{megabytes}MB"


def dataflow(spec: RunSpec, spec_path: Path) -> dict[str, Any]:
    """The dataflow descriptor (JSON is valid YAML)."""
    nodes = []
    for name in spec.node_names:
        node: dict[str, Any] = {"id": name, "path": str(NODE_SCRIPT), "args": f"{spec_path} {name}"}
        if spec.role_of(name) != "sink":
            node["outputs"] = [OUTPUT]
            node["shared_memory_pool_size"] = pool_size(spec)
        upstream = spec.upstream_of(name)
        if upstream:
            node["inputs"] = {OUTPUT: f"{upstream}/{OUTPUT}"}
        nodes.append(node)
    return {"nodes": nodes}


def environment(run_dir: Path) -> dict[str, str]:
    """Environment of ``dora run``: this venv first on PATH and active, the overlay, the repo."""
    overlay = run_dir / "zenoh-overlay.json5"
    overlay.write_text(ZENOH_OVERLAY)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = sys.prefix  # dora starts Python nodes with the active venv's Python
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["DORA_ZENOH_CONFIG_OVERLAY"] = str(overlay)
    return env


def wait_ready(spec: RunSpec, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Block until every node created its ready file; fail if dora exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(spec.node_names)
    while pending:
        pending = {n for n in pending if not ready_path(spec, n).exists()}
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dora run exited with {proc.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nodes not up after {READY_TIMEOUT_S} s: {sorted(pending)}")
        time.sleep(0.005)


def body(run: Run) -> None:
    """Launch the dataflow, stream for the spec's duration, Ctrl-C it."""
    spec = run.spec
    run_dir = Path(spec.run_dir)
    spec_path = run_dir / "spec.json"
    descriptor = run_dir / "dataflow.yml"
    descriptor.write_text(json.dumps(dataflow(spec, spec_path), indent=2))
    env = environment(run_dir)
    log = run_dir / "dora.log"
    shm_before = set(SHM_DIR.glob("*.zenoh"))
    run.note(f"shared_memory_pool_size {pool_size(spec)}; one daemon (dora run), no Workers")
    run.absent("start_s", "dora has no start(): its nodes stream as soon as all are up")
    with open(log, "wb") as log_file:
        run.setup_began_t = time.time()
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dora")),
                "run",
                str(descriptor),
                "--log-level",
                "error",
            ],
            cwd=run_dir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with run.phase("setup"):
            wait_ready(spec, proc, log)
        go_path(spec).touch()
        run.window_begin()
        time.sleep(spec.duration_s)
        run.window_end()
        with run.phase("stop"):
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        for leaked in set(SHM_DIR.glob("*.zenoh")) - shm_before:
            leaked.unlink(missing_ok=True)


if __name__ == "__main__":
    run_main(body)
