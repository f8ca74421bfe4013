"""Fixtures of the ML pack's tests: spoken sentences from espeak-ng."""

from __future__ import annotations

import shutil

import pytest

from ml_media import speak
from support.requirements import missing


@pytest.fixture
def speech(tmp_path):
    """Factory: ``text`` spoken by espeak-ng, as (int16 mono samples, rate)."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng (Debian package espeak-ng)")

    def make(text: str):
        return speak(tmp_path / "speech.wav", text)

    return make
