"""dora-rs 1.1.0 with Python nodes, driven by :mod:`benchmarks.workers.dora_runner`."""

from __future__ import annotations

from benchmarks.systems.chimerapy_family import VenvPeer


class Dora(VenvPeer):
    """``dora-rs`` + ``dora-rs-cli`` 1.1.0: ``dora run dataflow.yml`` on one daemon.

    dora has no Workers: the "over three Workers" graphs run on the single daemon
    that ``dora run`` starts (noted in each result).
    """

    name = group = "dora"
    runner = "benchmarks.workers.dora_runner"
    import_check = "import dora, pyarrow, numpy, psutil"
    distribution = "dora-rs"
