"""The adapter interface: what the driver needs from each system under test.

A :class:`System` is one column of the table. The driver calls, in order:

1. :meth:`System.prepare` once (build a venv, say) - may raise :class:`SetupError`;
2. :meth:`System.unavailable` once - a reason string skips the system for the run;
3. per workload, :meth:`System.unsupported` - a reason string records "cannot run";
4. :meth:`System.run` for each supported workload and repeat.

:meth:`System.run` writes a :class:`RunSpec`, runs ``python -m <runner> spec.json``
with the system's own interpreter in a bounded process group, and returns the
runner's ``result.json`` (or an error result when the runner died or timed out).
Adding a system means subclassing :class:`System` and writing a runner module that
calls :func:`benchmarks.workers.harness.run_main`.
"""

from __future__ import annotations

import json
from abc import ABC
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.spec import RunSpec
from benchmarks.venvs import SetupError
from benchmarks.workloads import Workload

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK_TIMEOUT_S = 120.0
SETUP_BUDGET_S = 240.0
STOP_BUDGET_S = 120.0

__all__ = ["REPO_ROOT", "SetupError", "System"]


class System(ABC):
    """One system under test.

    Attributes:
        name: Column name (``limit-tcp``, ``chimerapy``, ``cp0010``, ``engine``, ``dora``).
        group: Name used by ``--systems`` (``limits`` covers the three limits).
        kind: ``limit``, ``project`` or ``peer``.
        runner: Module run with the system's Python, e.g. ``benchmarks.workers.cp_runner``.
        import_check: Python statement that must succeed for the system to run.
        distribution: Distribution whose version is recorded (``None``: none).
    """

    name: str
    group: str
    kind: str
    runner: str
    import_check: str = "pass"
    distribution: str | None = None

    def __init__(self) -> None:
        self.version: str | None = None

    # -- lifecycle hooks -------------------------------------------------------------
    @property
    def python(self) -> Path:
        """Interpreter that runs this system's runner."""
        raise NotImplementedError

    @property
    def python_path(self) -> str:
        """``PYTHONPATH`` of its runner and of everything that runs under it (the repository)."""
        return str(REPO_ROOT)

    def prepare(self) -> None:
        """Install what the system needs (default: nothing)."""

    def unavailable(self, log_dir: Path) -> str | None:
        """Why the system cannot run at all, or ``None``; records its version."""
        version = (
            f"import importlib.metadata as m; print(m.version({self.distribution!r}))"
            if self.distribution
            else "print('-')"
        )
        log = log_dir / f"check-{self.name}.log"
        outcome = procs.run(
            [str(self.python), "-c", f"{self.import_check}\n{version}"],
            timeout_s=CHECK_TIMEOUT_S,
            log_path=log,
            cwd=REPO_ROOT,
            env={"PYTHONPATH": self.python_path},
        )
        lines = outcome.output_tail.strip().splitlines() or ["(no output)"]
        if outcome.timed_out or outcome.returncode != 0:
            return f"`{self.import_check}` failed with {self.python}: {lines[-1]}"
        self.version = lines[-1]
        return None

    #: Whether the suite can put this system's Workers on other hosts (``crosshost``).
    multi_host = False

    def unsupported(self, workload: Workload) -> str | None:
        """Why this system cannot run ``workload``, or ``None`` (default: all but cross-host)."""
        if workload.topology == "crosshost" and not self.multi_host:
            return "cross-host runs start this project's cp-worker on network namespaces; no such adapter here"
        return None

    def spec_for(self, workload: Workload, run_dir: Path, content_type: str) -> RunSpec:
        """The run spec of ``workload`` for this system."""
        return RunSpec.of(
            workload,
            system=self.name,
            workload=workload.key,
            run_dir=str(run_dir),
            content_type=content_type,
        )

    # -- running ---------------------------------------------------------------------
    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Run one spec in a bounded subprocess and return its result dict."""
        run_dir = Path(spec.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec_path = run_dir / "spec.json"
        spec.save(spec_path)
        timeout = SETUP_BUDGET_S + spec.duration_s + STOP_BUDGET_S
        outcome = procs.run(
            [str(self.python), "-m", self.runner, str(spec_path)],
            timeout_s=timeout,
            log_path=run_dir / "runner.log",
            cwd=REPO_ROOT,
            env={"PYTHONPATH": self.python_path, "TMPDIR": str(run_dir)},
        )
        try:
            result: dict[str, Any] = json.loads(spec.result_path.read_text())
        except (OSError, ValueError):
            result = {"ok": False, "error": None, "phase": "start-up", "metrics": {}, "phases": {}}
        if outcome.timed_out:
            result["ok"] = False
            result["error"] = (
                f"timed out after {timeout:.0f} s in phase "
                f"{result.get('phase')}: {result.get('error') or ''}"
            ).strip(": ")
        elif outcome.returncode != 0 and not result.get("error"):
            result["ok"] = False
            result["error"] = f"runner exited {outcome.returncode}: {outcome.output_tail[-600:]}"
        result["wall_s"] = outcome.seconds
        return result
