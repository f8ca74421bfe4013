"""This project and its two predecessors, all driven by :mod:`benchmarks.workers.cp_runner`.

* ``chimerapy``: this project (``packages/core``), installed in the driver's own
  environment; API of the seed (``import chimerapy as cp``), mapping by *names*.
  Skipped, with the reason, while ``import chimerapy; chimerapy.Manager`` fails.
* ``chimerapy-written``, ``chimerapy-inplace``: this project with a source that writes each
  frame, into a new array or into ``Node.output_buffer`` (the copy the latter saves).
* ``chimerapy-baseline``: the ``packages/core`` of another checkout of this project (the
  folder in ``$CHIMERAPY_BASELINE``, e.g. a ``git worktree`` of an earlier commit), run by
  the same interpreter and runner: a before/after comparison within one run.
* ``cp0010``: ``chimerapy==0.0.10`` in its venv; same API, mapping by *ids*.
* ``engine``: ``chimerapy-engine==0.1.1`` in its venv; ``chimerapy.engine``,
  ``setup`` instead of ``prep``, calls return futures, mapping by ids.
"""

from __future__ import annotations

import compileall
import os
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import venvs
from benchmarks.spec import RunSpec
from benchmarks.systems.base import REPO_ROOT, System
from benchmarks.workloads import Workload


class ChimeraPy(System):
    """This project, from the main environment."""

    name = group = "chimerapy"
    kind = "project"
    runner = "benchmarks.workers.cp_runner"
    import_check = "import chimerapy; chimerapy.Manager; chimerapy.Worker; chimerapy.Graph"
    distribution = "chimerapy-core"
    multi_host = True

    @property
    def python(self) -> Path:
        return Path(sys.executable)

    @property
    def sources(self) -> Path:
        """The checkout's ``packages`` folder."""
        return REPO_ROOT / "packages"

    def prepare(self) -> None:
        """Compile the sources to bytecode, as ``pip install`` does for the peers: with
        ``PYTHONDONTWRITEBYTECODE`` set, an editable install would otherwise compile every
        module again in every node process (and count it as setup time)."""
        compileall.compile_dir(str(self.sources), quiet=1)

    def unsupported(self, workload: Workload) -> str | None:
        if workload.topology == "crosshost":
            from tests.support import netns

            reason = netns.available()
            return f"cross-host runs need network namespaces: {reason}" if reason else None
        return super().unsupported(workload)


class ChimeraPyWritten(ChimeraPy):
    """This project; the source writes each frame into a new array (the transport copies it)."""

    name = group = "chimerapy-written"
    source_frames = "written"

    def spec_for(self, workload: Workload, run_dir: Path, content_type: str) -> RunSpec:
        return replace(super().spec_for(workload, run_dir, content_type), source_frames=self.source_frames)


class ChimeraPyInPlace(ChimeraPyWritten):
    """This project; the source writes each frame into ``Node.output_buffer`` (no copy after)."""

    name = group = "chimerapy-inplace"
    source_frames = "in-place"


class ChimeraPyBaseline(ChimeraPy):
    """This project as another checkout has it (``$CHIMERAPY_BASELINE``): before and after."""

    name = group = "chimerapy-baseline"
    kind = "baseline"

    @property
    def sources(self) -> Path:
        return Path(os.environ.get("CHIMERAPY_BASELINE", "")) / "packages"

    @property
    def python_path(self) -> str:
        checkout = os.environ.get("CHIMERAPY_BASELINE", "")
        return os.pathsep.join([str(Path(checkout) / "packages" / "core" / "src"), super().python_path])

    def unavailable(self, log_dir: Path) -> str | None:
        checkout = os.environ.get("CHIMERAPY_BASELINE")
        if not checkout or not (Path(checkout) / "packages" / "core" / "src" / "chimerapy").is_dir():
            return ("set CHIMERAPY_BASELINE to a checkout of this project to compare with "
                    "(e.g. git worktree add /tmp/base <commit>)")
        return super().unavailable(log_dir)


class VenvPeer(System):
    """A peer installed by the suite in its own venv, the one named like the system."""

    kind = "peer"

    def __init__(self) -> None:
        super().__init__()
        self.venv = venvs.VENVS[self.name]

    @property
    def python(self) -> Path:
        return self.venv.python

    def prepare(self) -> None:
        venvs.ensure(self.venv)


class ChimeraPy0010(VenvPeer):
    """``chimerapy==0.0.10``: the release whose API the seed documents."""

    name = group = "cp0010"
    runner = ChimeraPy.runner
    import_check = "import chimerapy; chimerapy.Manager"
    distribution = "chimerapy"


class Engine(VenvPeer):
    """``chimerapy-engine==0.1.1``: the successor."""

    name = group = "engine"
    runner = ChimeraPy.runner
    import_check = "import chimerapy.engine; chimerapy.engine.Manager"
    distribution = "chimerapy-engine"
