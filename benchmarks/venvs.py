"""Peer environments: one virtual environment per peer under ``benchmarks/.venvs/``.

Each peer is pinned here (with the Debian packages its build needs) and installed by
``python -m benchmarks setup`` or, lazily, by ``run``. A venv is reused while its
marker file lists exactly the current pins; otherwise it is rebuilt from scratch.
Every command is bounded (see :mod:`benchmarks.procs`) and logged next to the venv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs

VENV_ROOT = Path(__file__).resolve().parent / ".venvs"
MARKER = "benchmark-pins.txt"
APT_TIMEOUT_S = 900.0
PIP_TIMEOUT_S = 1800.0


class SetupError(RuntimeError):
    """A peer environment could not be built; the message says which step failed."""


@dataclass(frozen=True)
class Venv:
    """A peer's pinned environment."""

    name: str
    pins: tuple[str, ...]
    debian: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return VENV_ROOT / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def log(self) -> Path:
        return VENV_ROOT / f"{self.name}.log"

    def is_ready(self) -> bool:
        """True when the venv exists and was built with exactly these pins."""
        marker = self.path / MARKER
        return self.python.exists() and marker.exists() and marker.read_text() == self.marker_text

    @property
    def marker_text(self) -> str:
        return "\n".join(self.pins) + "\n"


VENVS: dict[str, Venv] = {
    # 0.0.10 builds PyAudio from source (portaudio headers); numpy<2 as in its day.
    "cp0010": Venv("cp0010", ("chimerapy==0.0.10", "numpy<2", "psutil"), ("portaudio19-dev",)),
    # Without dataclasses-json 0.6.4 the engine hangs in commit_graph.
    "engine": Venv(
        "engine",
        ("chimerapy-engine==0.1.1", "dataclasses-json==0.6.4", "numpy<2", "psutil"),
        ("portaudio19-dev",),
    ),
    "dora": Venv("dora", ("dora-rs==1.1.0", "dora-rs-cli==1.1.0", "numpy", "pyarrow", "psutil")),
}


def _check(cmd: list[str], venv: Venv, timeout_s: float, step: str) -> None:
    outcome = procs.run(
        cmd, timeout_s=timeout_s, log_path=venv.log, env={"DEBIAN_FRONTEND": "noninteractive"}
    )
    if outcome.timed_out or outcome.returncode != 0:
        why = "timed out" if outcome.timed_out else f"exit {outcome.returncode}"
        raise SetupError(f"{venv.name}: {step} {why}; see {venv.log}\n{outcome.output_tail[-800:]}")


def _debian_missing(packages: tuple[str, ...]) -> list[str]:
    missing = []
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def ensure(venv: Venv) -> None:
    """Build ``venv`` unless it is ready; raise :class:`SetupError` on failure."""
    if venv.is_ready():
        return
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    missing = _debian_missing(venv.debian)
    if missing:
        if not shutil.which("apt-get"):
            raise SetupError(
                f"{venv.name}: needs Debian packages {missing} and there is no apt-get"
            )
        _check(["apt-get", "update"], venv, APT_TIMEOUT_S, "apt-get update")
        _check(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            venv,
            APT_TIMEOUT_S,
            "apt-get install",
        )
    _check([sys.executable, "-m", "venv", "--clear", str(venv.path)], venv, 300.0, "venv")
    _check(
        [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *venv.pins],
        venv,
        PIP_TIMEOUT_S,
        "pip install",
    )
    (venv.path / MARKER).write_text(venv.marker_text)
