"""The cluster token: Workers, raw sockets and file transfers without it are refused."""

import asyncio
import os
import subprocess
import sys

import aiohttp
import pytest

from chimerapy.net import auth

pytestmark = pytest.mark.timeout(60)


def test_worker_with_the_token_joins_and_wrong_token_is_refused(make_manager, make_worker, caplog):
    manager = make_manager(token="s3cret-token")
    assert manager.token == "s3cret-token"
    assert manager.worker_command("lab2") == f"cp-worker --ip 127.0.0.1 --port {manager.port} --name lab2 --token s3cret-token"
    good = make_worker("good")
    assert good.connect(manager.host, manager.port, token="s3cret-token")
    bad = make_worker("bad")
    assert bad.connect(manager.host, manager.port, token="guess") is False
    assert "refused the cluster token" in caplog.text
    assert list(manager.workers) == ["good"]


def test_local_workers_find_the_token_of_a_manager_in_their_process(make_manager, make_worker):
    manager = make_manager(token="local-token")
    assert make_worker("w").connect(manager.host, manager.port)  # the seed API: no token argument
    assert os.environ[auth.TOKEN_ENV] == "local-token"


def test_cp_worker_without_a_token_is_refused(make_manager):
    manager = make_manager(token="t0k3n")
    env = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    result = subprocess.run([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                             str(manager.port), "--name", "intruder", "--timeout", "5"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "requires a cluster token" in result.stderr
    assert manager.workers == {}


def test_raw_connections_without_the_token_get_nothing(make_manager, make_worker):
    manager = make_manager(token="abc")
    worker = make_worker("w", manager)

    async def probe():
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(f"http://{manager.host}:{manager.port}/ws/worker")
            assert info.value.status == 401
            async with http.get(f"http://127.0.0.1:{worker.port}/files/anything/x.csv") as response:
                assert response.status == 401
                assert "no cluster token" in await response.text()
            async with http.get(f"http://127.0.0.1:{worker.port}/files/anything/x.csv",
                                headers=auth.bearer("wrong")) as response:
                assert response.status == 401 and "wrong cluster token" in await response.text()
            async with http.get(f"http://127.0.0.1:{worker.port}/files/anything/x.csv",
                                headers=auth.bearer("abc")) as response:
                assert response.status == 404  # authenticated: the file simply does not exist

    asyncio.run(probe())


def test_token_comparison():
    assert auth.matches("abc", "abc") and not auth.matches("abc", "abd") and not auth.matches("abc", None)
    assert len(auth.new_token()) >= 32 and auth.new_token() != auth.new_token()
