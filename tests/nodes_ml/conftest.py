"""Fixtures of the ML pack's tests: spoken sentences from espeak-ng."""

from __future__ import annotations

import os
import shutil

import pytest

from ml_media import speak


def missing(what: str) -> None:
    """Skip a test that needs ``what`` on a developer machine; fail it in CI (it must be there)."""
    message = f"this test needs {what}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must install it)")
    pytest.skip(message)


@pytest.fixture
def speech(tmp_path):
    """Factory: ``text`` spoken by espeak-ng, as (int16 mono samples, rate)."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng (Debian package espeak-ng)")

    def make(text: str):
        return speak(tmp_path / "speech.wav", text)

    return make
