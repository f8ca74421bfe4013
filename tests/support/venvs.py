"""Virtual environments for tests that need a Worker without the node packs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_venv(folder: Path, *requirements: str) -> Path:
    """Create a venv in `folder` with `requirements` (pip arguments); return its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    if requirements:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                       check=True, timeout=900, capture_output=True)
    return python


def pip_freeze(python: Path) -> str:
    return subprocess.run([str(python), "-m", "pip", "freeze", "--all"], check=True, capture_output=True,
                          text=True, timeout=120).stdout
