"""Fixtures of the video pack's tests: numbered clips, a private Xvfb display, recordings on Workers."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.processes import end_process
from support.requirements import missing
from video_media import write_clip


@pytest.fixture
def make_clip(tmp_path):
    """Factory: a numbered H.264 clip (see video_media.write_clip) under tmp_path."""

    def make(name: str = "clip.mp4", **kwargs) -> Path:
        return write_clip(tmp_path / name, **kwargs)

    return make


@dataclass
class XDisplay:
    """A private Xvfb display: ``name`` (":N"), its size, and ``paint`` for coloured rectangles."""

    name: str
    width: int
    height: int

    def paint(self, *rects: tuple[int, int, int, int, tuple[int, int, int]]) -> None:
        """Fill each ``(x, y, width, height, (r, g, b))`` on the root window, then sync."""
        from Xlib import display as xdisplay

        connection = xdisplay.Display(self.name)
        try:
            screen = connection.screen()
            for x, y, width, height, (r, g, b) in rects:
                pixel = screen.default_colormap.alloc_color(r * 257, g * 257, b * 257).pixel
                gc = screen.root.create_gc(foreground=pixel)
                screen.root.fill_rectangle(gc, x, y, width, height)
                gc.free()
            connection.sync()
        finally:
            connection.close()


@pytest.fixture
def xvfb(tmp_path):
    """A private Xvfb display (640x480, 24 bits), on a free display number; ended after the test."""
    binary = shutil.which("Xvfb")
    if binary is None:
        missing("Xvfb (Debian package xvfb)")
    try:
        import Xlib  # noqa: F401
    except ImportError:
        missing("python-xlib (pip install python-xlib)")
    read_end, write_end = os.pipe()
    with open(tmp_path / "xvfb.log", "wb") as log:
        # -displayfd: Xvfb picks a free display number and writes it once it accepts connections.
        process = subprocess.Popen(
            [binary, "-displayfd", str(write_end), "-screen", "0", "640x480x24", "-noreset", "-nolisten", "tcp"],
            pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    os.close(write_end)
    try:
        number = _read_display_number(read_end, process, timeout=15)
        yield XDisplay(f":{number}", 640, 480)
    finally:
        os.close(read_end)
        end_process(process, grace=5)


def _read_display_number(fd: int, process: subprocess.Popen, timeout: float) -> int:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise RuntimeError(f"Xvfb did not start (exit code {process.poll()}); see xvfb.log in the test folder")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                raise RuntimeError("Xvfb closed -displayfd without naming its display")
            data += chunk
    return int(data.strip())

