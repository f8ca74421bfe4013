"""The node-pack template behind ``chimerapy new-pack NAME``: a working pack with one node and a test."""

from __future__ import annotations

import re
from pathlib import Path

from .__about__ import __version__

__all__ = ["create_pack"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_PYPROJECT = '''[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "chimerapy-nodes-{dash}"
version = "0.1.0"
description = "ChimeraPy node pack: {name}"
requires-python = ">=3.10"
dependencies = ["chimerapy-core>={major_minor},<{next_minor}"]

[project.optional-dependencies]
test = ["pytest>=7"]

# One entry point per node: "<pack>.<node>" = "<module>:<class>".
[project.entry-points."chimerapy.nodes"]
"{name}.counter" = "{module}.counter:Counter"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]
'''

_INIT = '''"""ChimeraPy node pack {name}."""

__version__ = "0.1.0"
'''

_NODE = '''"""Counter: a source node that counts at a steady rate."""

from __future__ import annotations

import time

import chimerapy as cp


class Counter(cp.Node):
    """Emits an increasing count at a steady rate (a starting point for your own nodes)."""

    kind = "source"  # "source", "step" or "sink": shown by `chimerapy nodes`

    def __init__(self, name: str = "counter", *, rate: float = 10.0, start: int = 0) -> None:
        super().__init__(name)
        if rate <= 0:
            raise ValueError(f"Counter {{name!r}}: rate must be positive, got {{rate}}")
        self.rate, self.start = rate, start

    def prep(self) -> None:
        # Open devices and files here, not in __init__: the node travels to its Worker first.
        self.count = self.start
        self.next_due = time.monotonic()

    def step(self) -> cp.DataChunk:
        self.next_due += 1.0 / self.rate
        time.sleep(max(0.0, self.next_due - time.monotonic()))
        chunk = cp.DataChunk()
        chunk.add("count", self.count)
        chunk.add("timestamp", self.now())
        self.count += 1
        return chunk
'''

_TEST = '''"""Tests for the counter node, run in-process with chimerapy.testing."""

from chimerapy.testing import run_node

from {module}.counter import Counter


def test_counter_counts_from_its_start():
    chunks = run_node(Counter("counter", rate=1000, start=5), steps=3)
    assert [chunk.get("count")["value"] for chunk in chunks] == [5, 6, 7]
'''

_README = '''# chimerapy-nodes-{dash}

A ChimeraPy node pack. Its nodes register in the `chimerapy.nodes` entry-point group:

```bash
pip install -e .[test]
chimerapy nodes        # lists {name}.counter
pytest
```

Add a node: write a `chimerapy.Node` subclass in `src/{module}/` (declare `kind`, give it a one-line
docstring and keyword options with type hints), add its entry point to `pyproject.toml`, reinstall.
'''


def create_pack(name: str, directory: Path | None = None) -> Path:
    """Write the template pack for ``name`` (lowercase, digits, underscores) and return its folder.

    Raises:
        ValueError: for a name that is not a valid Python identifier in lowercase.
        FileExistsError: when the folder already exists.
    """
    if not _NAME.match(name):
        raise ValueError(f"pack name {name!r} must be lowercase letters, digits and underscores, "
                         f"starting with a letter (e.g. 'eyetracker')")
    module = f"chimerapy_nodes_{name}"
    dash = name.replace("_", "-")
    folder = Path(directory) if directory is not None else Path.cwd() / f"chimerapy-nodes-{dash}"
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} already exists and is not empty")
    major, minor = (int(part) for part in __version__.split(".")[:2])
    values = {"name": name, "module": module, "dash": dash,
              "major_minor": f"{major}.{minor}", "next_minor": f"{major}.{minor + 1}"}
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{module}/__init__.py": _INIT,
        f"src/{module}/counter.py": _NODE,
        f"tests/test_{name}_counter.py": _TEST,
    }
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return folder
