"""Fixtures of the LSL pack's tests: LSL kept on this machine, under a session id of its own.

liblsl reads its configuration once per process, so ``LSLAPICFG`` is set here, before any test
uses LSL; the Workers' node processes inherit it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from lsl_helpers import write_config

_FOLDER = Path(tempfile.mkdtemp(prefix="cp-lsl-"))  # mode 0700
SESSION = f"chimerapy-test-{uuid.uuid4().hex[:12]}"
os.environ["LSLAPICFG"] = str(write_config(_FOLDER, session=SESSION))


@pytest.fixture(scope="session", autouse=True)
def lsl_config():
    """The ``lsl_api.cfg`` every LSL user of this test session reads; removed at the end."""
    yield Path(os.environ["LSLAPICFG"])
    shutil.rmtree(_FOLDER, ignore_errors=True)


@pytest.fixture
def stream_name():
    """A stream name no other test uses."""
    return f"cp-{uuid.uuid4().hex[:8]}"
