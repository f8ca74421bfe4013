"""Side-by-side benchmark suite: ChimeraPy against its limits and its peers.

Run ``python -m benchmarks run --quick`` (see ``benchmarks/README.md``). This package
is imported both by the driver (main environment) and by the worker scripts that run
inside each peer's virtual environment, so it must stay import-light: nothing here
may import a third-party package at module level.
"""
