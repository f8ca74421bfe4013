"""Worker scripts: run with one system's Python, execute one run, write ``result.json``.

Every runner is started by the driver as ``python -m benchmarks.workers.<runner> SPEC``
in its own process group, and writes its findings into the run directory named by the
spec. Node-side code (``cp_nodes``, ``dora_node``) writes one report per node there.
"""
