"""The Manager's REST API and events WebSocket: every route, and every refusal a clear 4xx that
changes nothing (malformed bodies, unknown names, pipelines with errors, calls out of order,
requests without the right token)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from chimerapy.net import auth, tls

pytestmark = pytest.mark.timeout(90)

#: The test nodes of tests/support, as an installed pack declares them (imported by node processes).
PACK = '''
from support import nodes


class Counter(nodes.CountingSource):
    """Counts; with image=True each chunk also carries a frame whose shade changes."""

    kind = "source"

    def __init__(self, name, count: int | None = None, period: float = 0.0, image: bool = False):
        super().__init__(name, count, period, image)


class Doubler(nodes.Doubler):
    """Doubles record i."""


class RaisesIn(nodes.RaisesIn):
    """Raises in the phase named."""

    def __init__(self, name, phase: str):
        super().__init__(name, phase)
'''


ROUTES = [("GET", "/api/state"), ("GET", "/api/workers"), ("GET", "/api/nodes"), ("GET", "/api/registry"),
          ("POST", "/api/pipeline"), ("POST", "/api/start"), ("POST", "/api/preview"), ("POST", "/api/record"),
          ("POST", "/api/stop"), ("POST", "/api/collect"),
          ("POST", "/api/shutdown"), ("GET", "/api/sessions"), ("GET", "/api/sessions/x/files"),
          ("GET", "/api/sessions/x/files/meta.json")]


@pytest.fixture
def test_pack(tmp_path, monkeypatch):
    """Install PACK: a module and a dist-info with its entry points, on this and the node processes' path."""
    folder = tmp_path / "pack"
    info = folder / "rest_api_pack-1.0.dist-info"
    info.mkdir(parents=True)
    (folder / "rest_api_pack.py").write_text(PACK)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rest-api-pack\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[chimerapy.nodes]\n" + "".join(f"test.{n.lower()} = rest_api_pack:{n}\n" for n in ("Counter", "Doubler", "RaisesIn")))
    monkeypatch.syspath_prepend(str(folder))
    tests = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), tests, os.environ.get("PYTHONPATH")])))
    yield
    sys.modules.pop("rest_api_pack", None)


def pipeline(**changes):
    """A valid pipeline: an image source on w1 feeding a doubler on w2."""
    data = {
        "workers": [{"name": "w1"}, {"name": "w2"}],
        "nodes": [{"name": "src", "registry": "test.counter", "params": {"period": 0.02, "image": True}},
                  {"name": "dbl", "registry": "test.doubler"}],
        "edges": [{"source": "src", "target": "dbl"}],
        "mapping": {"w1": ["src"], "w2": ["dbl"]},
    }
    data.update(changes)
    return data


def client(manager, token: str | None = "right") -> aiohttp.ClientSession:
    """An HTTP client of ``manager`` presenting its token (``"right"``), none, or another one."""
    presented = manager.token if token == "right" else token
    return aiohttp.ClientSession(base_url=f"https://{manager.host}:{manager.port}", headers=auth.bearer(presented),
                                 connector=aiohttp.TCPConnector(ssl=tls.pinned(manager.fingerprint)),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))  # keep cookies of 127.0.0.1


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs) -> tuple[int, dict]:
    async with http.request(method, path, **kwargs) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 20.0, **match) -> dict:
    """The next event of type ``kind`` whose fields equal ``match``."""
    async def wanted() -> dict:
        while True:
            event = await ws.receive_json()
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    return await asyncio.wait_for(wanted(), timeout)


def sessions_in(manager) -> list[str]:
    return sorted(path.name for path in manager.root_logdir.iterdir() if not path.name.startswith("."))  # .chimerapy: keys


def test_commit_start_watch_stop_and_collect(cluster, test_pack):
    manager, _ = cluster("w1", "w2")

    async def scenario():
        async with client(manager) as http:
            status, registry = await call(http, "GET", "/api/registry")
            counter = next(n for n in registry["nodes"] if n["name"] == "test.counter")
            assert status == 200 and counter["package"] == "rest-api-pack" and not counter["broken"]
            assert [p["name"] for p in counter["parameters"]] == ["count", "period", "image"]

            status, body = await call(http, "POST", "/api/pipeline", json=pipeline())
            assert status == 200, body
            assert (body["state"], sorted(body["nodes"])) == ("committed", ["dbl", "src"])
            session = body["session"]

            status, state = await call(http, "GET", "/api/state")
            assert status == 200 and state["state"] == "committed" and state["session"] == session
            assert sorted(state["workers"]) == ["w1", "w2"]
            assert state["graph"]["edges"] == [{"source": "src", "target": "dbl", "follow": False, "latest_only": False}]
            assert {n: (v["state"], v["worker"]) for n, v in state["nodes"].items()} == {
                "src": ("ready", "w1"), "dbl": ("ready", "w2")}
            status, workers = await call(http, "GET", "/api/workers")
            assert [(w["name"], w["host"]) for w in workers["workers"]] == [("w1", "127.0.0.1"), ("w2", "127.0.0.1")]

            async with http.ws_connect("/api/events") as ws:
                snapshot = await ws.receive_json()
                assert snapshot["type"] == "snapshot" and snapshot["state"] == "committed"
                assert sorted(snapshot["nodes"]) == ["dbl", "src"] and snapshot["graph"]["edges"]

                status, body = await call(http, "POST", "/api/start")
                assert (status, body) == (200, {"state": "running", "session": session})
                await next_event(ws, "state", state="running")
                preview = await next_event(ws, "preview", node="src")
                assert preview["records"]["frame"]["width"] == 160 and preview["records"]["frame"]["jpeg"]
                await next_event(ws, "stats", worker="w1")  # the stats of src

            status, nodes = await call(http, "GET", "/api/nodes")
            src = nodes["nodes"]["src"]
            assert src["state"] == "running" and src["stats"]["outputs"] > 0 and src["worker"] == "w1"
            assert src["preview"]["frame"]["jpeg"] and "value" in src["preview"]["i"]
            status, state = await call(http, "GET", "/api/state")
            assert "jpeg" not in state["previews"]["src"]["frame"] and state["previews"]["src"]["frame"]["height"] == 120

            status, body = await call(http, "POST", "/api/pipeline", json=pipeline())
            assert status == 409 and "POST /api/stop first" in body["error"]
            assert manager.state == "running" and manager.session.id == session

            status, body = await call(http, "POST", "/api/stop")
            assert status == 200 and body["state"] == "stopped" and body["stopped"]
            assert sorted(body["collected"]) == ["w1", "w2"] and all(r["complete"] for r in body["collected"].values())
            status, body = await call(http, "POST", "/api/collect")
            assert status == 200 and all(r["complete"] for r in body["collected"].values())

            status, listing = await call(http, "GET", "/api/sessions")
            (entry,) = listing["sessions"]
            assert entry["id"] == session and entry["complete"] and entry["workers"] == ["w1", "w2"]
            assert entry["start_time"] < entry["stop_time"] and sorted(entry["nodes"]) == ["dbl", "src"]
            status, files = await call(http, "GET", f"/api/sessions/{session}/files")
            assert {"chimerapy.log", "meta.json"} <= {f["path"] for f in files["files"]}
            async with http.get(f"/api/sessions/{session}/files/meta.json") as response:
                assert json.loads(await response.text())["session"] == session

    asyncio.run(scenario())


def test_pipelines_with_errors_are_refused_with_each_problem(cluster, test_pack):
    manager, _ = cluster("w1")
    bad = {
        "nodes": [{"name": "src", "registry": "test.countr"},
                  {"name": "dbl", "registry": "test.counter", "params": {"perod": 0.1}}],
        "edges": [{"source": "src", "target": "sink"}],
        "mapping": {"w1": ["src", "dbl"]},
        "workers": [{"name": "w1"}],
    }
    cycle = pipeline(edges=[{"source": "src", "target": "dbl"}, {"source": "dbl", "target": "src"}],
                     workers=[{"name": "w1"}], mapping={"w1": ["src", "dbl"]})
    fails_in_prep = pipeline(nodes=[{"name": "boom", "registry": "test.raisesin", "params": {"phase": "prep"}}],
                             edges=[], workers=[{"name": "w1"}], mapping={"w1": ["boom"]})

    async def scenario():
        async with client(manager) as http:
            for body, fix in ((b"{not json", "not valid JSON"), (b"", "the body is empty"),
                              (b"[1, 2]", "the body is a JSON list")):
                status, answer = await call(http, "POST", "/api/pipeline", data=body)
                assert status == 400 and fix in answer["error"] and "send a pipeline" in answer["error"]

            status, answer = await call(http, "POST", "/api/pipeline", json=bad)
            problems = {p["path"]: p["message"] for p in answer["problems"]}
            assert status == 400 and "did you mean 'test.counter'" in problems["nodes[0].registry"]
            assert "unknown node 'sink'" in problems["edges[0].target"]
            assert "has no option 'perod' (did you mean 'period'?)" in problems["nodes[1].params.perod"]

            status, answer = await call(http, "POST", "/api/pipeline", json=pipeline())
            assert status == 400 and answer["problems"] == [
                {"path": "mapping.w2", "message": answer["problems"][0]["message"]}]
            assert "Worker 'w2' is not connected" in answer["error"] and "cp-worker" in answer["error"]

            status, answer = await call(http, "POST", "/api/pipeline", json=cycle)
            assert status == 400 and "cycle" in answer["error"]
            assert (manager.state, sessions_in(manager)) == ("idle", [])

            status, answer = await call(http, "POST", "/api/pipeline", json=fails_in_prep)
            assert status == 422 and "boom (prep)" in answer["error"]
            (error,) = answer["errors"]
            assert (error["node"], error["phase"], error["worker"]) == ("boom", "prep", "w1")
            assert "boom fails in prep on purpose" in error["traceback"]
            assert manager.state == "idle"

    asyncio.run(scenario())


def test_calls_out_of_order_unknown_routes_and_methods(make_manager):
    manager = make_manager()

    async def scenario():
        async with client(manager) as http:
            for route in ("/api/start", "/api/preview", "/api/record", "/api/stop", "/api/collect"):
                status, answer = await call(http, "POST", route)
                assert status == 409 and "while the cluster is idle" in answer["error"], answer
            status, answer = await call(http, "GET", "/api/nope")
            assert status == 404 and "GET /api/state" in answer["error"]
            status, answer = await call(http, "GET", "/api/start")
            assert status == 405 and "POST /api/start" in answer["error"]
            status, state = await call(http, "GET", "/api/state")
            assert (status, state["state"], state["nodes"], state["session"]) == (200, "idle", {}, None)
        assert sessions_in(manager) == []

    asyncio.run(scenario())


def test_requests_without_the_right_token_are_refused(make_manager):
    manager = make_manager(token="the-token")

    async def scenario():
        for token, reason in ((None, "no cluster token"), ("wrong", "a wrong cluster token")):
            async with client(manager, token) as http:
                for method, path in ROUTES:
                    status, answer = await call(http, method, path, json=pipeline())
                    assert status == 401 and reason in answer["error"], (method, path)
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect("/api/events")
                assert refused.value.status == 401
                page = {"Accept": "text/html"}
                async with http.get("/", headers=page, allow_redirects=False) as response:
                    assert (response.status, response.headers["Location"]) == (302, "/login")
                async with http.get("/", allow_redirects=False) as response:
                    assert response.status == 401
                for query in ("/?code=wrong", "/?token=the-token"):  # the token in a URL signs nobody in
                    async with http.get(query, headers=page, allow_redirects=False) as response:
                        assert response.status == 302 and response.headers["Location"] == "/login"
                        assert auth.COOKIE not in response.cookies
        assert manager.state == "idle" and sessions_in(manager) == []

        async with client(manager, None) as http:
            for public in ("/login", "/assets/app.js", "/assets/style.css", "/assets/login.js"):
                async with http.get(public) as response:
                    assert response.status == 200, public
            one_time = manager.dashboard_url().split(str(manager.port), 1)[1]  # the URL the CLI prints
            async with http.get(one_time, allow_redirects=False) as response:
                assert (response.status, response.headers["Location"]) == (302, "/")
                assert response.cookies[auth.COOKIE]["httponly"]
                assert response.cookies[auth.COOKIE].value != manager.token
            async with http.get("/") as response:  # the cookie now signs the browser in
                page = await response.text()
                assert response.status == 200 and "/assets/app.js" in page
                assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            async with http.ws_connect("/api/events", origin=f"https://{manager.host}:{manager.port}") as ws:
                assert (await ws.receive_json())["type"] == "snapshot"  # the cookie, from its own page

    asyncio.run(scenario())


def test_archive_lists_sessions_and_serves_their_files(make_manager):
    manager = make_manager()
    logdir = manager.root_logdir
    older, newer = logdir / "20260101-000000-aaaaaa", logdir / "20260102-000000-bbbbbb"
    video = bytes(range(256)) * 40
    for folder, created in ((older, 1.0), (newer, 2.0)):
        (folder / "w1" / "cam").mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({
            "session": folder.name, "created": created, "start_time": created + 1, "stop_time": created + 5,
            "workers": {"w1": {}}, "graph": {"nodes": [{"name": "cam"}], "edges": []},
            "collected": {"w1": {"files": 1, "complete": created > 1}}}))
        (folder / "w1" / "cam" / "video.mp4").write_bytes(video)
    (newer / "w1" / "cam" / "late.csv.part").write_text("being collected")
    (logdir / "not-a-session").mkdir()
    (logdir / "secret.txt").write_text("outside every session")
    (older / "w1" / "escape.txt").symlink_to(logdir / "secret.txt")

    async def scenario():
        async with client(manager) as http:
            status, listing = await call(http, "GET", "/api/sessions")
            assert status == 200 and listing["logdir"] == str(logdir)
            assert [(s["id"], s["complete"]) for s in listing["sessions"]] == [(newer.name, True), (older.name, False)]
            assert listing["sessions"][0]["workers"] == ["w1"] and listing["sessions"][0]["nodes"] == ["cam"]

            status, files = await call(http, "GET", f"/api/sessions/{newer.name}/files")
            assert files["files"] == [{"path": "meta.json", "size": (newer / "meta.json").stat().st_size},
                                      {"path": "w1/cam/video.mp4", "size": len(video)}]
            url = f"/api/sessions/{newer.name}/files/w1/cam/video.mp4"
            async with http.get(url, headers={"Range": "bytes=100-199"}) as response:
                assert response.status == 206 and await response.read() == video[100:200]
                assert response.headers["Content-Range"] == f"bytes 100-199/{len(video)}"
                assert response.content_type == "video/mp4"

            traversals = [f"/api/sessions/{older.name}/files/..%2Fsecret.txt",
                          f"/api/sessions/{older.name}/files/w1/..%2F..%2Fsecret.txt",
                          f"/api/sessions/{older.name}/files/w1/escape.txt",
                          f"/api/sessions/{older.name}/files/%2Fetc%2Fpasswd",
                          "/api/sessions/../files/secret.txt", "/api/sessions/..%2F/files/secret.txt"]
            for path in traversals:
                async with http.get(URL(path, encoded=True)) as response:
                    text = await response.text()
                    assert response.status in (400, 404) and "outside every session" not in text, path
                    assert "error" in json.loads(text), path
            status, answer = await call(http, "GET", f"/api/sessions/{older.name}/files/w1/escape.txt")
            assert status == 400 and "leaves the session folder" in answer["error"]

            for path, fix in ((f"/api/sessions/{newer.name}/files/w1/nothing.mp4", "has no file 'w1/nothing.mp4'"),
                              ("/api/sessions/not-a-session/files", "no session 'not-a-session'"),
                              ("/api/sessions/nope/files/meta.json", "GET /api/sessions lists them")):
                status, answer = await call(http, "GET", path)
                assert status == 404 and fix in answer["error"], path

    asyncio.run(scenario())


def test_shutdown_answers_then_shuts_everything_down(cluster):
    manager, _ = cluster("w1")

    async def scenario():
        async with client(manager) as http, http.ws_connect("/api/events") as ws:
            assert (await ws.receive_json())["type"] == "snapshot"
            status, answer = await call(http, "POST", "/api/shutdown")
            assert status == 200 and answer["shutting_down"]
            await next_event(ws, "workers", worker="w1", connected=False)
            await next_event(ws, "state", state="shutdown")
            closing = await ws.receive(timeout=20)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get("/api/state") as response:
                    pytest.fail(f"the Manager still answers after shutdown: {response.status}")

    asyncio.run(scenario())
    assert manager.state == "shutdown"


def test_editor_routes_validate_save_and_load_pipelines(cluster, test_pack):
    from chimerapy.pipeline_checks import check_pipeline

    manager, _ = cluster("w1", "w2")
    mistyped = pipeline()
    mistyped["nodes"][0]["params"]["period"] = "fast"

    async def scenario():
        async with client(manager) as http:
            status, body = await call(http, "POST", "/api/validate", json=pipeline())
            assert status == 200 and body["ok"] and body["nodes"] == ["src", "dbl"] and body["warnings"] == []
            status, body = await call(http, "POST", "/api/validate", json=mistyped)
            assert status == 200 and not body["ok"] and body["problems"] == [
                {"path": "nodes[0].params.period", "message": "test.counter's option 'period' takes float, not 'fast' "
                                                              "(a string)"}]
            status, body = await call(http, "POST", "/api/validate", json=pipeline(
                workers=[{"name": "w1"}, {"name": "w9"}], mapping={"w1": ["src"], "w9": ["dbl"]}))
            assert not body["ok"] and "Worker 'w9' is not connected (connected: w1, w2)" in body["error"]
            assert manager.state == "idle" and sessions_in(manager) == []  # checking creates nothing

            status, body = await call(http, "PUT", "/api/pipelines/lab-1", json=pipeline())
            assert status == 200 and body["name"] == "lab-1"
            saved = Path(body["path"])
            assert saved == manager.root_logdir / "pipelines" / "lab-1.json"
            assert saved.stat().st_mode & 0o777 == 0o600 and saved.parent.stat().st_mode & 0o777 == 0o700
            assert check_pipeline(saved).graph.names() == ["src", "dbl"]  # a file `chimerapy run` takes
            status, body = await call(http, "PUT", "/api/pipelines/lab-2", json=mistyped)
            assert status == 400 and "takes float" in body["error"] and not (saved.parent / "lab-2.json").exists()
            status, body = await call(http, "PUT", "/api/pipelines/..hidden", json=pipeline())
            assert status == 400 and "is not a pipeline name" in body["error"]
            status, body = await call(http, "GET", "/api/pipelines")
            assert [(p["name"], p["path"]) for p in body["pipelines"]] == [("lab-1", str(saved))]
            status, body = await call(http, "GET", "/api/pipelines/lab-1")
            assert status == 200 and body["nodes"][0]["params"] == {"period": 0.02, "image": True}
            status, body = await call(http, "GET", "/api/pipelines/nope")
            assert status == 404 and "GET /api/pipelines lists them" in body["error"]

            status, body = await call(http, "POST", "/api/pipeline", json=body if status == 200 else pipeline())
            assert status == 200, body
            session = body["session"]
            status, ran = await call(http, "GET", f"/api/sessions/{session}/pipeline")
            assert status == 200 and [n["name"] for n in ran["nodes"]] == ["src", "dbl"]
            assert ran["mapping"] == {"w1": ["src"], "w2": ["dbl"]} and ran["nodes"][0]["params"]["period"] == 0.02
            status, body = await call(http, "GET", "/api/sessions/nope/pipeline")
            assert status == 404

    asyncio.run(scenario())
