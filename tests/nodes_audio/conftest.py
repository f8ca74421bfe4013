"""Fixtures of the audio pack's tests: a private PulseAudio server (see audio_pulse.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from audio_pulse import PulseServer


@pytest.fixture
def pulse(monkeypatch):
    """A running private PulseAudio server (see PulseServer); stopped after the test."""
    missing = [tool for tool in ("pulseaudio", "pactl") if shutil.which(tool) is None]
    if missing:
        why = f"needs {' and '.join(missing)}: apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        if os.environ.get("CI"):
            pytest.fail(why)  # CI must run these tests: a missing install step is a failure
        pytest.skip(why)
    # a short path: a unix socket's path is limited to 107 bytes
    folder = Path(tempfile.mkdtemp(prefix="cp-pulse-"))
    server = PulseServer(folder)
    monkeypatch.setenv("PULSE_SERVER", f"unix:{server.socket}")
    monkeypatch.setenv("PULSE_CLIENTCONFIG", str(server.client_config))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
