"""What is installed is read once per installation, and again after one changes."""

from __future__ import annotations

import os
import sys

import pytest
from chimerapy import installed

pytestmark = pytest.mark.timeout(30)


def test_a_reading_is_kept_until_an_installation_folder_changes(tmp_path, monkeypatch):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    os.utime(folder, (0, 0))  # an installation made long ago (file times tick coarsely: no tie with now)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "scripts"), str(folder)])
    readings = []

    @installed.per_installation
    def read():
        readings.append(sorted(path.name for path in folder.iterdir()))
        return readings[-1]

    assert read() == [] and read() == []
    assert len(readings) == 1, "read again although nothing was installed"

    (tmp_path / "scripts").mkdir()  # a script's own folder changing is no installation
    (tmp_path / "scripts" / "output.csv").write_text("x\n")
    read()
    assert len(readings) == 1

    (folder / "chimerapy_nodes_extra-1.0.dist-info").mkdir()  # what pip install does
    assert read() == ["chimerapy_nodes_extra-1.0.dist-info"]
    assert len(readings) == 2

    sys.path.append(str(tmp_path / "more"))  # a folder added to the import path
    read()
    assert len(readings) == 3


def test_the_versions_name_the_core_and_python():
    versions = installed.versions()
    assert versions["chimerapy-core"] == installed.__version__
    assert versions["python"].count(".") == 2
    assert versions is installed.versions()  # the second call reads nothing
