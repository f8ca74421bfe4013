"""Shipping Python packages to Workers that lack them (``commit_graph(..., send_packages=[...])``).

A package is given as ``{"name": ..., "path": ...}`` (a package folder, a folder of Python
sources, or a project with a ``pyproject.toml``) or by the distribution name of an installed pack
(``"chimerapy-nodes-video"`` or ``{"name": "chimerapy-nodes-video"}``). :func:`build` turns it into
a :class:`Package`: a deterministic zip of its sources plus a ``.dist-info`` with its version and
entry points (so the Worker's registry finds its nodes), identified by a content hash.
:func:`unpack` extracts one into a folder that node processes put on their ``PYTHONPATH``:
nothing is installed, and the folder goes away with the Worker's temporary files.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.metadata
import io
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["Package", "build", "unpack"]

_EPOCH = (2020, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "build", "dist", ".pytest_cache", "tests", "test"}


@dataclass(frozen=True)
class Package:
    """A package ready to ship."""

    name: str
    version: str
    top_levels: tuple[str, ...]
    archive: bytes
    sha256: str
    override: bool = False

    def describe(self) -> dict[str, Any]:
        """What a Worker needs to decide whether it lacks this package (no archive)."""
        return {"name": self.name, "version": self.version, "top_levels": list(self.top_levels),
                "sha256": self.sha256, "override": self.override}


def build(spec: str | dict[str, Any], index: int = 0) -> Package:
    """Build the :class:`Package` described by ``spec`` (entry ``index`` of send_packages).

    Raises:
        ValueError: naming the entry and the fix, for a path that does not exist, a folder with
            no Python package, or an unknown distribution.
    """
    where = f"send_packages[{index}]"
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not spec.get("name"):
        raise ValueError(f"{where}: give a dict with 'name' (and 'path' for a local folder), got {spec!r}")
    name, override = str(spec["name"]), bool(spec.get("override", False))
    if spec.get("path") is not None:
        files, version, entry_points = _local_files(Path(spec["path"]).expanduser(), where)
    else:
        files, version, entry_points = _installed_files(name, where)
    top_levels = tuple(sorted({PurePosixPath(p).parts[0].removesuffix(".py") for p in files}))
    files[f"{_dist_name(name)}-{version}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    if entry_points:
        files[f"{_dist_name(name)}-{version}.dist-info/entry_points.txt"] = entry_points.encode()
    archive = _zip(files)
    return Package(name, version, top_levels, archive, hashlib.sha256(archive).hexdigest(), override)


def unpack(archive: bytes, destination: Path) -> None:
    """Extract ``archive`` into ``destination`` (refusing paths that would escape it)."""
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for member in zipped.namelist():
            if not (root / member).resolve().is_relative_to(root):
                raise ValueError(f"package archive member {member!r} escapes the package folder")
        zipped.extractall(root)


def _local_files(path: Path, where: str) -> tuple[dict[str, bytes], str, str]:
    if not path.exists():
        raise ValueError(f"{where}: path {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{where}: path {str(path)!r} is not a folder; give a package folder or a project")
    version, entry_points = "0+local", ""
    pyproject = path / "pyproject.toml"
    roots = [path]
    if (path / "__init__.py").exists():  # the package folder itself
        files = _sources(path, prefix=path.name)
    else:
        if pyproject.exists():
            version, entry_points = _project_metadata(pyproject)
            if (path / "src").is_dir():
                roots = [path / "src"]
        files = {}
        for root in roots:
            for child in sorted(root.iterdir()):
                if child.is_dir() and (child / "__init__.py").exists() and child.name not in _SKIP_DIRS:
                    files.update(_sources(child, prefix=child.name))
                elif child.suffix == ".py" and child.name not in ("setup.py", "conftest.py"):
                    files[child.name] = child.read_bytes()
    if not any(name.endswith(".py") for name in files):
        raise ValueError(f"{where}: {str(path)!r} holds no Python package or module")
    return files, version, entry_points


def _installed_files(name: str, where: str) -> tuple[dict[str, bytes], str, str]:
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(
            f"{where}: no installed distribution is named {name!r}; give its installed name "
            f"(e.g. 'chimerapy-nodes-video') or a 'path' to its folder"
        ) from None
    tops = (dist.read_text("top_level.txt") or "").split() or _top_levels_of(dist)
    files: dict[str, bytes] = {}
    for top in tops:
        spec = importlib.machinery.PathFinder.find_spec(top)
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        if spec.submodule_search_locations:
            files.update(_sources(origin.parent, prefix=top))
        elif origin.suffix == ".py":
            files[origin.name] = origin.read_bytes()
    if not files:
        raise ValueError(f"{where}: found no Python sources of the installed distribution {name!r}")
    return files, dist.version, dist.read_text("entry_points.txt") or ""


def _top_levels_of(dist: importlib.metadata.Distribution) -> list[str]:
    """Top-level import names of ``dist``: from its entry points, or its name."""
    tops = {ep.value.split(":")[0].split(".")[0] for ep in dist.entry_points}
    return sorted(tops) or [_dist_name(dist.metadata["Name"]).replace("-", "_")]


def _sources(folder: Path, *, prefix: str) -> dict[str, bytes]:
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part in _SKIP_DIRS for part in relative.parts) and path.suffix != ".pyc":
            files[f"{prefix}/{relative.as_posix()}"] = path.read_bytes()
    return files


def _project_metadata(pyproject: Path) -> tuple[str, str]:
    """Version and entry points (as entry_points.txt text) from a pyproject's [project] table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    version = str(project.get("version") or "0+local")
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
        lines.append("")
    return version, "\n".join(lines)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            zipped.writestr(info, files[name])
    return buffer.getvalue()


def _dist_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)
