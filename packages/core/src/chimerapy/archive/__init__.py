"""Recorded sessions after the run: load them aligned, check them, export them.

    import chimerapy as cp

    session = cp.open_session("runs/20260101-120000-abc123")
    camera = session.stream("camera", "frames")
    frame = camera.frame_at(camera.start + 5.0)       # the frame shown 5 s in
    table = session.stream("sensor", "rows").table()  # a pandas DataFrame
    report = check_session(session)                    # gaps, drops, clocks, problems
    export_xdf(session, "session.xdf")                 # for pyxdf / MNE (export_mcap: Foxglove)

Every time is Manager time (UNIX seconds) already aligned across Workers. The file formats are
described in ``docs/archive.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chimerapy.archive.array import ArrayStream
    from chimerapy.archive.audio import AudioSamples, AudioStream
    from chimerapy.archive.check import Problem, Report, check_session
    from chimerapy.archive.clock_offsets import ClockSeries
    from chimerapy.archive.errors import ArchiveError
    from chimerapy.archive.export_mcap import export_mcap
    from chimerapy.archive.export_xdf import export_xdf
    from chimerapy.archive.image import ImageStream
    from chimerapy.archive.json_lines import JsonStream
    from chimerapy.archive.session import Sample, Session, open_session
    from chimerapy.archive.session_log import LogRecord
    from chimerapy.archive.stream import Stream
    from chimerapy.archive.tabular import TabularStream
    from chimerapy.archive.text import TextStream
    from chimerapy.archive.video import VideoStream

# Each module loads on first use: the Manager checks every collected session with
# check_session, and should not pay for the exporters and readers it does not use.
_LAZY = {
    "ArrayStream": "array",
    "AudioSamples": "audio",
    "AudioStream": "audio",
    "Problem": "check",
    "Report": "check",
    "check_session": "check",
    "ClockSeries": "clock_offsets",
    "ArchiveError": "errors",
    "export_mcap": "export_mcap",
    "export_xdf": "export_xdf",
    "ImageStream": "image",
    "JsonStream": "json_lines",
    "Sample": "session",
    "Session": "session",
    "open_session": "session",
    "LogRecord": "session_log",
    "Stream": "stream",
    "TabularStream": "tabular",
    "TextStream": "text",
    "VideoStream": "video",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArchiveError",
    "ArrayStream",
    "AudioSamples",
    "AudioStream",
    "ClockSeries",
    "ImageStream",
    "JsonStream",
    "LogRecord",
    "Problem",
    "Report",
    "Sample",
    "Session",
    "Stream",
    "TabularStream",
    "TextStream",
    "VideoStream",
    "check_session",
    "export_mcap",
    "export_xdf",
    "open_session",
]
