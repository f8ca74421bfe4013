"""Finding the streams of a session folder from its files alone.

A collected session is ``<session>/<worker>/<node>/<files>``; a Worker's own folder (and the
earliest versions of this project, which left recordings on the Workers) is
``<session>/<node>/<files>``. A folder is a node's folder when it holds record files or an
image folder; otherwise its sub-folders are. A file whose transfer never finished is
``<file>.part``: it stands in for ``<file>`` when that is missing.

Each stream is recognised by its files (see :mod:`chimerapy.records`): ``X.mp4`` video, ``X.wav``
or ``X.audio.json`` audio, ``X.jsonl`` json, ``X.txt`` text, ``X/timestamps.csv`` image,
``X.arrays.csv`` array, and any other ``X.csv`` whose first column is ``timestamp`` tabular. An index file left without its
main file (``X.timestamps.csv``, ``X.blocks.csv``) still makes a stream, recognised by its header.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chimerapy.archive.array import ArrayStream
from chimerapy.archive.audio import AudioStream
from chimerapy.archive.image import ImageStream
from chimerapy.archive.json_lines import JsonStream
from chimerapy.archive.stream import Stream
from chimerapy.archive.tabular import TabularStream
from chimerapy.archive.text import TextStream
from chimerapy.archive.video import VideoStream

__all__ = ["find_streams"]

log = logging.getLogger(__name__)

_PART = ".part"
_RECORD_SUFFIXES = (".mp4", ".wav", ".jsonl", ".txt", ".csv", ".audio.json")


def find_streams(root: Path) -> list[Stream]:
    """Every stream under the session folder ``root``, sorted by Worker, node and name."""
    streams: list[Stream] = []
    for first in _subfolders(root):
        if _is_node_folder(first):
            streams += _node_streams(first, worker="")
        else:
            for second in _subfolders(first):
                streams += _node_streams(second, worker=first.name)
    return sorted(streams, key=lambda s: (s.worker, s.node, s.name))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _entries(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Files and folders by logical name: a ``.part`` only where the finished file is missing."""
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            folders[path.name] = path
        elif path.name.endswith(_PART):
            files.setdefault(path.name[: -len(_PART)], path)
        else:
            files[path.name] = path
    return files, folders


def _is_image_folder(folder: Path) -> bool:
    """A folder with a ``timestamps.csv`` of ``file,timestamp`` (not a table named "timestamps")."""
    for name in ("timestamps.csv", f"timestamps.csv{_PART}"):
        if (folder / name).is_file():
            return _header(folder / name) == "file,timestamp"
    return False


def _is_node_folder(folder: Path) -> bool:
    files, folders = _entries(folder)
    return any(name.endswith(_RECORD_SUFFIXES) for name in files) or any(
        _is_image_folder(sub) for sub in folders.values()
    )


def _header(path: Path) -> str:
    with path.open("rb") as file:
        return file.readline().decode("utf-8", errors="replace").strip()


def _node_streams(folder: Path, *, worker: str) -> list[Stream]:
    files, folders = _entries(folder)
    claimed: set[str] = set()
    streams: list[Stream] = []

    def add(cls: type[Stream], name: str, roles: dict[str, str]) -> None:
        present = {role: files[file] for role, file in roles.items() if file in files}
        claimed.update(roles.values())
        streams.append(cls(worker=worker, node=folder.name, name=name, folder=folder, files=present))

    for file_name in list(files):
        if file_name.endswith(".mp4"):
            name = file_name[: -len(".mp4")]
            add(VideoStream, name, {"mp4": file_name, "timestamps": f"{name}.timestamps.csv"})
        elif file_name.endswith((".wav", ".audio.json")):
            name = file_name.removesuffix(".wav").removesuffix(".audio.json")
            if f"{name}.wav" not in claimed:
                add(AudioStream, name, {"wav": f"{name}.wav", "meta": f"{name}.audio.json",
                                        "blocks": f"{name}.blocks.csv"})
        elif file_name.endswith(".jsonl"):
            add(JsonStream, file_name[: -len(".jsonl")], {"jsonl": file_name})
        elif file_name.endswith(".txt"):
            name = file_name[: -len(".txt")]
            add(TextStream, name, {"txt": file_name, "timestamps": f"{name}.timestamps.csv"})
    for file_name, path in files.items():
        if file_name in claimed or not file_name.endswith(".csv"):
            continue
        header = _header(path)
        stem = file_name[: -len(".csv")]
        if file_name.endswith(".timestamps.csv") and header == "frame_index,timestamp":
            add(VideoStream, stem[: -len(".timestamps")], {"timestamps": file_name})
        elif file_name.endswith(".timestamps.csv") and header == "byte_offset,timestamp":
            add(TextStream, stem[: -len(".timestamps")], {"timestamps": file_name})
        elif file_name.endswith(".blocks.csv") and header == "sample_index,timestamp":
            add(AudioStream, stem[: -len(".blocks")], {"blocks": file_name})
        elif file_name.endswith(".arrays.csv") and header == "file,row,timestamp":
            add(ArrayStream, stem[: -len(".arrays")], {"index": file_name})
        elif header.split(",")[0] == "timestamp":
            add(TabularStream, stem, {"csv": file_name})
        else:
            log.debug("%s: not a ChimeraPy record (ignored)", path)
    for name, sub in folders.items():
        if _is_image_folder(sub):
            stamps = sub / "timestamps.csv"
            if not stamps.exists():
                stamps = sub / f"timestamps.csv{_PART}"
            streams.append(ImageStream(worker=worker, node=folder.name, name=name, folder=folder,
                                       files={"timestamps": stamps}))
    for stream in streams:
        for path in stream.files:
            if path.name.endswith(_PART):
                stream.notes.append(f"{path.name}: its transfer never finished (read as far as it goes)")
    return streams
