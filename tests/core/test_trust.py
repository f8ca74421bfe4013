"""Attacks on the control plane and on secrets at rest, run for real:

- a fake Manager on a crashed Manager's port (TLS with another certificate, or plain TCP) gets
  neither the token nor anything derived from it, and no node code it sends runs;
- another local user (``nobody``) cannot read the token, a Worker's scratch folder or the archive;
- a scratch folder pre-created by another user, or open to others, is refused and never used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import chimerapy as cp
from chimerapy.errors import UnsafePathError
from chimerapy.loop_thread import LoopThread
from chimerapy.manager.commit_plan import WorkerRef, plan_commit
from chimerapy.net import auth, control, handshake, tls
from chimerapy.net.control import Envelope
from chimerapy.private import scratch_base
from support.processes import new_marker, wait_until_gone

pytestmark = pytest.mark.timeout(120)

MANAGER_SCRIPT = """
import sys, time
import chimerapy as cp
manager = cp.Manager(logdir=sys.argv[1], port=0)
print(manager.port, manager.fingerprint, flush=True)
time.sleep(600)
"""


class Planted(cp.Node):
    """Node code a fake Manager sends: running it anywhere leaves a file behind."""

    def __init__(self, name: str, marker: str) -> None:
        super().__init__(name)
        self.marker = marker

    def prep(self) -> None:
        Path(self.marker).write_text("the fake Manager's code ran")

    def step(self) -> None:
        time.sleep(0.1)


def planted_create_nodes(marker: Path, worker: str) -> Envelope:
    """A real ``create_nodes`` request carrying :class:`Planted`'s pickled code."""
    graph = cp.Graph()
    graph.add_node(Planted("planted", str(marker)))
    plan = plan_commit(graph, {worker: ["planted"]}, [WorkerRef(worker, worker, "")], drain_timeout=1.0,
                       shipped=frozenset())
    specs = plan.node_specs(worker)
    assert base64.b64decode(specs[0]["code"])  # the payload really carries code
    return Envelope("create_nodes", {"session": "planted", "nodes": specs}, id=1)


class LogWatch(logging.Handler):
    """Sets an event when a record of the Worker's logger contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text, self.seen, self.records = text, threading.Event(), []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.records.append(message)
        if self.text in message:
            self.seen.set()


@pytest.fixture
def log_watch():
    watches = []

    def watch(text: str) -> LogWatch:
        handler = LogWatch(text)
        logging.getLogger("chimerapy").addHandler(handler)
        logging.getLogger("chimerapy").setLevel(logging.INFO)
        watches.append(handler)
        return handler

    yield watch
    for handler in watches:
        logging.getLogger("chimerapy").removeHandler(handler)


class RecordingServer:
    """A fake Manager that records every byte it receives (after TLS, when it speaks TLS)."""

    def __init__(self, loop: LoopThread, port: int, ssl_context) -> None:
        self.received = bytearray()
        self.connections = 0
        self.connected = threading.Event()
        self._loop = loop
        self.tls = ssl_context is not None
        self._server = loop.run(asyncio.start_server(self._handle, "127.0.0.1", port, ssl=ssl_context), timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        try:
            while block := await asyncio.wait_for(reader.read(65536), 5):
                self.received += block
                if not self.tls:  # answer like any plain web server would
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    break
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        async def close() -> None:  # on the server's own loop: asyncio servers are not thread-safe
            self._server.close()
            await self._server.wait_closed()

        self._loop.run(close(), timeout=10)


def start_manager_process(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int, str]:
    script = tmp_path / "manager.py"
    script.write_text(MANAGER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs")], env=env,
                               stdout=subprocess.PIPE, text=True)
    port, fingerprint = process.stdout.readline().split()
    return process, int(port), fingerprint


@pytest.mark.parametrize("fake", ["tls-with-another-certificate", "plain-tcp"])
@pytest.mark.parametrize("pinned_by", ["--fingerprint", "first-proven-join"])
def test_fake_manager_on_a_crashed_managers_port_gets_no_token_and_runs_no_code(
        tmp_path, make_worker, log_watch, fake, pinned_by):
    marker, env = new_marker()
    token = auth.new_token()
    env = {**env, auth.TOKEN_ENV: token}
    manager, port, fingerprint = start_manager_process(tmp_path, env)
    loop = LoopThread("fake-manager")
    server = None
    try:
        worker = make_worker("trusting")
        worker.reconnect_timeout = 60.0
        given = fingerprint if pinned_by == "--fingerprint" else None
        assert worker.connect("127.0.0.1", port, token=token, fingerprint=given)
        assert worker._pin == fingerprint  # given, or learnt from the join the Manager proved
        refused = log_watch("not the pinned" if fake.startswith("tls") else "TLS handshake failed")
        manager.send_signal(signal.SIGKILL)  # the Manager crashes ...
        manager.wait(10)
        # ... and another program takes its port, with a certificate of its own or none
        identity = tls.create_identity(tmp_path / "fake-tls")
        context = identity.server_context() if fake.startswith("tls") else None
        deadline = time.monotonic() + 10
        while server is None:
            try:
                server = RecordingServer(loop, port, context)
            except OSError:
                assert time.monotonic() < deadline, "the crashed Manager's port never came free"
                time.sleep(0.1)
        assert refused.seen.wait(60), refused.records  # the reconnecting Worker said why it refused
        if fake.startswith("tls"):  # it met the fake's certificate, and said so
            assert any(identity.fingerprint in record for record in refused.records), refused.records
        else:
            assert server.connected.is_set()  # it did knock on the fake's door
        assert not worker.connected
    finally:
        if server is not None:
            server.close()
        loop.stop()
        if manager.poll() is None:
            manager.kill()
            manager.wait(10)
    received = bytes(server.received)
    assert token.encode() not in received
    if fake.startswith("tls"):
        assert received == b""  # the pin failed in the TLS handshake: not even a request was sent
    else:
        assert b"HTTP" not in received and b"auth_" not in received  # only a TLS ClientHello
    assert wait_until_gone(marker) == []


RESTARTED_MANAGER_SCRIPT = """
import sys
import chimerapy as cp
manager = cp.Manager(logdir=sys.argv[1], port=int(sys.argv[2]))
print(manager.port, manager.fingerprint, flush=True)
print("joined" if manager.wait_for_workers(["trusting"], timeout=60) else "alone", flush=True)
manager.shutdown()
"""


def test_a_manager_restarted_on_its_logdir_keeps_its_pinned_workers(tmp_path, make_worker):
    """Pinning does not cost crash recovery: the Manager's certificate and token live in its logdir."""
    marker, env = new_marker()
    env = {key: value for key, value in env.items() if key != auth.TOKEN_ENV}  # the token: the logdir's own
    first, port, fingerprint = start_manager_process(tmp_path, env)
    second = None
    try:
        token = auth.read_token_file(tmp_path / "runs" / ".chimerapy" / "token")
        worker = make_worker("trusting")
        worker.reconnect_timeout = 60.0
        assert worker.connect("127.0.0.1", port, token=token, fingerprint=fingerprint)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        script = tmp_path / "restarted.py"
        script.write_text(RESTARTED_MANAGER_SCRIPT)
        second = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs"), str(port)], env=env,
                                  stdout=subprocess.PIPE, text=True)
        again_port, again_fingerprint = second.stdout.readline().split()
        assert (int(again_port), again_fingerprint) == (port, fingerprint)
        assert second.stdout.readline().strip() == "joined"  # the Worker reconnected by itself
        assert second.wait(30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    assert wait_until_gone(marker) == []


def test_a_server_that_cannot_prove_the_token_gets_no_proof_and_its_code_never_runs(
        tmp_path, make_worker, log_watch):
    """A Worker with no pin meets a WebSocket server that answers like a Manager, sends a made-up
    proof and, at once, a ``create_nodes`` with pickled code: the Worker refuses before either."""
    planted = tmp_path / "planted-ran"
    request = planted_create_nodes(planted, "naive")
    seen: list[Envelope] = []
    headers: list[dict[str, str]] = []

    async def fake_socket(http_request: web.Request) -> web.WebSocketResponse:
        headers.append(dict(http_request.headers))
        ws = web.WebSocketResponse()
        await ws.prepare(http_request)
        async for message in ws:
            envelope = control.decode(message.data)
            seen.append(envelope)
            if envelope.type == "auth_hello":
                await ws.send_str(control.encode(Envelope("auth_challenge", {
                    "nonce": handshake.new_nonce(), "proof": handshake.new_nonce()})))
                await ws.send_str(control.encode(request))
        return ws

    identity = tls.create_identity(tmp_path / "fake-tls")
    app = web.Application()
    app.router.add_get("/ws/worker", fake_socket)
    loop = LoopThread("fake-manager")
    runner = web.AppRunner(app)
    loop.run(runner.setup(), timeout=10)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=identity.server_context())
    loop.run(site.start(), timeout=10)
    port = site._server.sockets[0].getsockname()[1]
    try:
        refused = log_watch("could not prove it holds the cluster token")
        worker = make_worker("naive")
        assert worker.connect("127.0.0.1", port, token="the-real-token") is False
        assert refused.seen.is_set()
    finally:
        loop.run(runner.cleanup(), timeout=10)
        loop.stop()
    assert [envelope.type for envelope in seen] == ["auth_hello"]  # no proof, no registration
    assert "the-real-token" not in json.dumps([envelope.data for envelope in seen] + headers)
    assert "Authorization" not in headers[0]
    assert not planted.exists()  # the planted node never ran
    assert worker._pin is None  # nothing learnt from a server that failed the proof


# -- other local users ----------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to the user nobody needs root")

PROBE = r"""
import json, os, sys
token, paths = sys.stdin.readline().strip(), json.loads(sys.argv[1])  # the token: never on a command line
result = {"uid": os.getuid(), "read": {}, "token_in": []}
for path in paths:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read()
        result["read"][path] = "readable"
    except OSError as error:
        result["read"][path] = type(error).__name__
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as file:
                if token.encode() in file.read():
                    result["token_in"].append(f"/proc/{pid}/{part}")
        except OSError:
            pass
print(json.dumps(result))
"""


def probe_as_nobody(token: str, paths: list[Path]) -> dict:
    """Run :data:`PROBE` as ``nobody`` (the system python, stdlib only) and return what it could read."""
    nobody = pwd.getpwnam("nobody")
    result = subprocess.run(["/usr/bin/python3", "-c", PROBE, json.dumps([str(p) for p in paths])], input=token + "\n",
                            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], cwd="/",
                            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(result.stdout)
    assert answer["uid"] == nobody.pw_uid
    return answer


class Beacon(cp.Node):
    def step(self):
        time.sleep(0.02)
        self.save_tabular("beats", {"value": 1})


@pytest.fixture
def shared_folder():
    """A folder every user may enter (0755, outside pytest's private tmp): only ChimeraPy's own modes
    protect what is inside."""
    import shutil

    base = Path(tempfile.mkdtemp(prefix="chimerapy-shared-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@needs_root
@pytest.mark.timeout(180)
def test_another_local_user_cannot_read_the_token_scratch_folder_or_archive(shared_folder, make_manager,
                                                                            spawn_cp_worker, caplog):
    caplog.set_level(logging.DEBUG, logger="chimerapy")
    base = shared_folder
    manager = make_manager(logdir=base / "runs", token=auth.new_token())
    token = manager.token
    spawn_cp_worker(manager, "lab")
    assert manager.wait_for_workers(["lab"], timeout=60)
    graph = cp.Graph()
    graph.add_node(Beacon("beacon"))
    assert manager.commit_graph(graph, {"lab": ["beacon"]})
    manager.start()
    scratch = scratch_base() / "worker-lab"
    recording = scratch / manager.session.id / "beacon" / "beats.csv"
    deadline = time.monotonic() + 30
    while not (recording.exists() and recording.stat().st_size > 100):
        assert time.monotonic() < deadline, "the node never recorded"
        time.sleep(0.1)
    session = manager.session.path
    while_running = probe_as_nobody(token, [scratch, recording, scratch.parent, session,
                                            session / "meta.json", session / "chimerapy.log",
                                            manager.token_file, manager.token_file.parent])
    assert manager.stop()
    archived = session / "lab" / "beacon" / "beats.csv"
    assert archived.stat().st_size > 100
    after = probe_as_nobody(token, [session, archived, archived.parent, session / "lab"])
    for answer in (while_running, after):
        assert answer["token_in"] == [], answer  # no command line, no readable environment holds it
        assert set(answer["read"].values()) == {"PermissionError"}, answer["read"]
    # as the owner: private modes all the way down, and the token in no file of the session
    for path in [session, *session.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in caplog.text

    async def api_answers() -> str:
        async with aiohttp.ClientSession(headers=auth.bearer(token)) as http:
            texts = []
            for path in ("/api/state", "/api/sessions", f"/api/sessions/{session.name}/files"):
                async with http.get(f"https://127.0.0.1:{manager.port}{path}",
                                    ssl=tls.pinned(manager.fingerprint)) as response:
                    assert response.status == 200
                    texts.append(await response.text())
            return "".join(texts)

    assert token not in asyncio.run(api_answers())


@needs_root
def test_a_scratch_folder_another_user_made_or_opened_is_refused(shared_folder, tmp_path, monkeypatch):
    shared = shared_folder / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    nobody = pwd.getpwnam("nobody")
    base = shared / f"chimerapy-{os.geteuid()}"
    subprocess.run(["mkdir", "-m", "0777", str(base)], user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                   check=True, timeout=30)  # another user gets there first
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    with pytest.raises(UnsafePathError) as refused:
        cp.Worker("w", port=0)
    message = str(refused.value)
    assert str(base) in message and "belongs to another user" in message and "rm -rf" in message
    assert list(base.iterdir()) == []  # nothing was written into it

    # the same through cp-worker: a clear error, exit code 1, before any connection
    result = subprocess.run([sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", "9",
                             "--name", "w", "--fingerprint", "sha256:" + "0" * 64],
                            env={**os.environ, "TMPDIR": str(shared), auth.TOKEN_ENV: "t"},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and str(base) in result.stderr and "belongs to another user" in result.stderr

    subprocess.run(["rm", "-rf", str(base)], user=nobody.pw_uid, group=nobody.pw_gid, check=True, timeout=30)
    # our own folders, but open to others, or a link: refused as well
    base.mkdir(mode=0o700)
    opened = base / "worker-w"
    opened.mkdir()
    opened.chmod(0o777)
    with pytest.raises(UnsafePathError, match="open to other users .*chmod 700"):
        cp.Worker("w", port=0)
    opened.rmdir()
    opened.symlink_to(tmp_path)
    with pytest.raises(UnsafePathError, match="link"):
        cp.Worker("w", port=0)
    opened.unlink()
    base.chmod(0o755)
    with pytest.raises(UnsafePathError, match="open to other users"):
        cp.Worker("w", port=0)
    base.chmod(0o700)
    worker = cp.Worker("w", port=0)  # a private base: a fresh private folder
    try:
        assert worker.tempdir == opened and stat.S_IMODE(opened.stat().st_mode) == 0o700
        assert opened.stat().st_uid == os.geteuid()
    finally:
        worker.shutdown()
