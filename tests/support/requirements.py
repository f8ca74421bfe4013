"""What to do when a test's outside requirement (a Debian tool, a display) is absent."""

from __future__ import annotations

import os

import pytest


def missing(what: str) -> None:
    """Skip a test that needs ``what`` on a developer's machine; fail it in CI, which must have it."""
    message = f"this test needs {what}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must install it)")
    pytest.skip(message)
