"""The cluster token: Workers, raw sockets and file transfers without it are refused; it is proven,
never sent; the join command pins the Manager's certificate and never carries the token."""

import asyncio
import os
import stat
import subprocess
import sys
import time

import aiohttp
import pytest

import chimerapy as cp
from chimerapy.errors import UnsafePathError
from chimerapy.net import auth, control, handshake, tls
from chimerapy.net.control import Envelope

pytestmark = pytest.mark.timeout(60)


def test_worker_with_the_token_joins_and_wrong_token_is_refused(make_manager, make_worker, caplog):
    manager = make_manager(token="s3cret-token")
    assert manager.token == "s3cret-token"
    command = manager.worker_command("lab2")
    assert command == (f"cp-worker --ip 127.0.0.1 --port {manager.port} --name lab2 --fingerprint "
                       f"{manager.fingerprint} --token-file {manager.token_file}")
    assert "s3cret-token" not in command and "s3cret-token" not in caplog.text
    assert auth.read_token_file(manager.token_file) == "s3cret-token"
    assert stat.S_IMODE(manager.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(manager.token_file.parent.stat().st_mode) == 0o700
    good = make_worker("good")
    assert good.connect(manager.host, manager.port, token="s3cret-token", fingerprint=manager.fingerprint)
    bad = make_worker("bad")
    assert bad.connect(manager.host, manager.port, token="guess") is False
    assert "could not prove it holds the cluster token" in caplog.text
    assert list(manager.workers) == ["good"]


def test_local_workers_find_the_token_and_fingerprint_of_a_manager_in_their_process(make_manager, make_worker):
    manager = make_manager(token="local-token")
    worker = make_worker("w")
    assert worker.connect(manager.host, manager.port)  # the seed API: no token, no fingerprint argument
    assert worker._pin == manager.fingerprint
    assert os.environ[auth.TOKEN_ENV] == "local-token"  # cp-worker processes this program starts inherit it


def test_cp_worker_without_a_token_is_refused(make_manager):
    manager = make_manager(token="t0k3n")
    env = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    result = subprocess.run([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                             str(manager.port), "--name", "intruder", "--fingerprint", manager.fingerprint,
                             "--timeout", "5"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no cluster token" in result.stderr and "CHIMERAPY_TOKEN" in result.stderr
    assert manager.workers == {}


def test_cp_worker_reads_the_token_file_and_refuses_one_others_can_read(make_manager, tmp_path):
    manager = make_manager(token="from-a-file")
    env = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    loose = tmp_path / "loose-token"
    loose.write_text("from-a-file\n")
    loose.chmod(0o644)
    result = subprocess.run([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                             str(manager.port), "--name", "w", "--token-file", str(loose), "--timeout", "5"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "chmod 600" in result.stderr and str(loose) in result.stderr
    assert manager.workers == {}
    with pytest.raises(UnsafePathError):
        auth.read_token_file(loose)
    loose.chmod(0o600)
    assert auth.read_token_file(loose) == "from-a-file"


def test_raw_connections_without_the_token_get_nothing(make_manager, make_worker):
    manager = make_manager(token="abc")
    worker = make_worker("w", manager)
    files = f"https://127.0.0.1:{worker.port}/files/anything/x.csv"

    async def probe():
        async with aiohttp.ClientSession() as http:
            # a client that skips the proof: its register is refused, it gets no command
            async with http.ws_connect(f"https://{manager.host}:{manager.port}/ws/worker",
                                       ssl=tls.pinned(manager.fingerprint)) as ws:
                await ws.send_str(control.encode(Envelope("register", {"name": "x", "id": "x"}, id=1)))
                answer = control.decode((await ws.receive(timeout=10)).data)
                assert answer.type == "reply" and not answer.ok and "auth_hello" in answer.error
            # one that cannot prove the token: the Manager's challenge, then a refusal
            async with http.ws_connect(f"https://{manager.host}:{manager.port}/ws/worker", ssl=False) as ws:
                await ws.send_str(control.encode(Envelope("auth_hello", {"nonce": handshake.new_nonce()})))
                challenge = control.decode((await ws.receive(timeout=10)).data)
                assert challenge.type == "auth_challenge"
                await ws.send_str(control.encode(Envelope("auth_proof", {"proof": "0" * 64})))
                answer = control.decode((await ws.receive(timeout=10)).data)
                assert not answer.ok and "proof of the cluster token is wrong" in answer.error
            assert list(manager.workers) == ["w"]
            # plain HTTP is not served at all
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"http://{manager.host}:{manager.port}/api/state")
            # the Worker's files: its own key only; the cluster token is worth nothing there
            async with http.get(files, ssl=False) as response:
                assert response.status == 401 and "no cluster token" in await response.text()
            async with http.get(files, ssl=False, headers=auth.bearer("abc")) as response:
                assert response.status == 401
            async with http.get(files, ssl=tls.pinned(worker._files_fingerprint),
                                headers=auth.bearer(worker._files_key)) as response:
                assert response.status == 404  # authenticated: the file simply does not exist

    asyncio.run(probe())


def test_token_comparison():
    assert auth.matches("abc", "abc") and not auth.matches("abc", "abd") and not auth.matches("abc", None)
    assert len(auth.new_token()) >= 32 and auth.new_token() != auth.new_token()


def test_handshake_proofs_are_bound_to_role_certificate_and_both_nonces():
    worker_nonce, manager_nonce = handshake.new_nonce(), handshake.new_nonce()
    fingerprint = "sha256:" + "ab" * 32
    binding = {"fingerprint": fingerprint, "worker_nonce": worker_nonce, "manager_nonce": manager_nonce}
    proof = handshake.proof("token", role="manager", **binding)
    assert "token" not in proof and len(proof) == 64
    assert handshake.verify("token", proof, role="manager", **binding)
    assert not handshake.verify("token", proof, role="worker", **binding)  # never valid in the other direction
    assert not handshake.verify("other", proof, role="manager", **binding)
    assert not handshake.verify("token", proof, role="manager", **{**binding, "fingerprint": "sha256:" + "cd" * 32})
    assert not handshake.verify("token", proof, role="manager", **{**binding, "worker_nonce": handshake.new_nonce()})
    assert not handshake.verify("token", proof, role="manager", **{**binding, "manager_nonce": handshake.new_nonce()})
    for junk in (None, 5, "", "z" * 64, ["x"]):
        assert not handshake.verify("token", junk, role="manager", **binding)
    assert not handshake.verify("token", proof, role="manager", **{**binding, "worker_nonce": "short"})
    assert handshake.new_nonce() != handshake.new_nonce()


def test_fingerprints_parse_and_identities_persist_privately(tmp_path):
    value = "sha256:" + "0f" * 32
    assert tls.parse_fingerprint(value.upper().replace("SHA256:", "sha256:")) == value
    assert tls.parse_fingerprint(":".join(["0F"] * 32)) == value
    for bad in ("", "sha256:xyz", "md5:" + "0f" * 16, value + "00"):
        with pytest.raises(ValueError, match="64 hex digits"):
            tls.parse_fingerprint(bad)
    first = tls.load_or_create_identity(tmp_path / "tls")
    again = tls.load_or_create_identity(tmp_path / "tls")
    assert first.fingerprint == again.fingerprint  # a restarted Manager keeps its pinned identity
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    for path in (first.cert_path, first.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = tls.create_identity(tmp_path / "other")
    assert other.fingerprint != first.fingerprint


def test_a_manager_keeps_its_token_and_certificate_across_restarts(make_manager, tmp_path, monkeypatch):
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    first = make_manager(logdir=tmp_path / "lab")
    token, fingerprint = first.token, first.fingerprint
    first.shutdown()
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    second = make_manager(logdir=tmp_path / "lab")
    assert (second.token, second.fingerprint) == (token, fingerprint)


def test_dashboard_one_time_code_signs_in_once(make_manager):
    manager = make_manager(token="dash-token")
    url = manager.dashboard_url()
    assert "dash-token" not in url and url.startswith(f"https://127.0.0.1:{manager.port}/?code=")
    code_path = url[len(f"https://127.0.0.1:{manager.port}"):]

    async def scenario():
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url=f"https://127.0.0.1:{manager.port}", cookie_jar=jar) as http:
            async with http.get(code_path, ssl=False, allow_redirects=False) as response:
                assert (response.status, response.headers["Location"]) == (302, "/")
                cookie = response.cookies[auth.COOKIE]
                assert cookie["httponly"] and cookie["secure"] and cookie.value != "dash-token"
            async with http.get("/api/state", ssl=False) as response:
                assert response.status == 200
        async with aiohttp.ClientSession(base_url=f"https://127.0.0.1:{manager.port}") as http:
            async with http.get(code_path, ssl=False, allow_redirects=False) as response:
                assert response.status == 401  # spent
            async with http.post("/login", data={"token": "wrong"}, ssl=False) as response:
                assert response.status == 401
            async with http.post("/login", data={"token": "dash-token"}, ssl=False) as response:
                assert response.status == 200 and auth.COOKIE in response.cookies

    asyncio.run(scenario())


class Recording(cp.Node):
    def step(self):
        time.sleep(0.02)
        self.save_tabular("rows", {"value": 1})


@pytest.mark.parametrize("archive_mode", [None, 0o750])
def test_archive_is_private_unless_the_user_widens_it(make_manager, make_worker, archive_mode):
    options = {} if archive_mode is None else {"archive_mode": archive_mode}
    manager = make_manager(**options)
    worker = make_worker("w", manager)
    graph = cp.Graph()
    graph.add_node(Recording("rec"))
    assert manager.commit_graph(graph, {"w": ["rec"]})
    manager.start()
    recording = worker.tempdir / manager.session.id / "rec" / "rows.csv"
    deadline = time.monotonic() + 30
    while not (recording.exists() and recording.stat().st_size > 20):  # rows reached the disk
        assert time.monotonic() < deadline, "the node never recorded"
        time.sleep(0.05)
    assert manager.stop()
    folder_mode = archive_mode or 0o700
    session = manager.session.path
    paths = [session, *session.rglob("*")]
    assert session / "w" / "rec" / "rows.csv" in paths and session / "meta.json" in paths
    for path in paths:
        expected = folder_mode if path.is_dir() else folder_mode & 0o666
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_an_archive_mode_that_locks_out_the_owner_is_refused(make_manager):
    with pytest.raises(ValueError, match="archive_mode"):
        make_manager(archive_mode=0o070)


def test_cp_worker_token_on_the_command_line_still_joins_but_warns(make_manager):
    manager = make_manager(token="old-habit")
    env = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    worker = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                               str(manager.port), "--name", "legacy", "--fingerprint", manager.fingerprint,
                               "--token", "old-habit"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = [worker.stderr.readline(), worker.stderr.readline()]
        assert "--token puts the cluster token on the command line" in lines[0], lines
        assert "legacy connected" in lines[1], lines
        assert manager.wait_for_workers(["legacy"], timeout=10)
    finally:
        worker.terminate()
        worker.wait(30)
