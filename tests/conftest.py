"""Fixtures shared by every test package: clusters that clean up, and a leftover-process check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import chimerapy as cp
from support.processes import end_process


# A suite started in the background (`nohup ... &`) inherits SIGINT ignored, and so would every
# process it starts; the tests that press Ctrl-C on a command (SIGINT) need it delivered there.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Fail a test that leaves a child process behind (and kill what it left)."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 10
    while True:
        left = [p for p in me.children(recursive=True) if p.pid not in before and _alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for process in left:
        process.kill()
    assert not left, f"processes left behind: {[(p.pid, _cmdline(p)) for p in left]}"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:200]
    except psutil.Error:
        return "?"


@pytest.fixture
def make_manager(tmp_path):
    """Factory for Managers on a free port, logging under tmp_path; all shut down after the test."""
    managers = []

    def make(**kwargs):
        kwargs.setdefault("port", 0)
        manager = cp.Manager(logdir=kwargs.pop("logdir", tmp_path / "runs"), **kwargs)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.shutdown()


@pytest.fixture
def make_worker():
    """Factory for in-process Workers connected to a Manager; all shut down after the test."""
    workers = []

    def make(name, manager=None, **kwargs):
        kwargs.setdefault("port", 0)
        worker = cp.Worker(name, **kwargs)
        workers.append(worker)
        if manager is not None:
            assert worker.connect(manager.host, manager.port, timeout=10)
        return worker

    yield make
    for worker in workers:
        worker.shutdown()


@pytest.fixture
def cluster(make_manager, make_worker):
    """Factory: a Manager and Workers named `names`, connected: returns (manager, workers)."""

    def make(*names, **manager_kwargs):
        manager = make_manager(**manager_kwargs)
        workers = [make_worker(name, manager) for name in names]
        return manager, workers

    return make


@pytest.fixture
def spawn_cp_worker():
    """Factory: start `cp-worker` in its own process; all are ended after the test."""
    processes = []

    def spawn(manager, name, *extra, env=None):
        command = [sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host,
                   "--port", str(manager.port), "--name", name, "--fingerprint", manager.fingerprint, *extra]
        # the token through the environment, never on the command line
        environment = {**os.environ, "CHIMERAPY_TOKEN": manager.token, **(env or {})}
        process = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        end_process(process)
