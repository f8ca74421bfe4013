"""The web surface: cookie requests only from the dashboard's own Origin (HTTP and the events
WebSocket), JSON bodies capped and checked (size, encoding, depth), pipelines capped in nodes and
validated in linear time."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
import pytest
from chimerapy.api.jsonio import MAX_JSON_BYTES, MAX_JSON_DEPTH
from chimerapy.pipeline_checks import check_pipeline
from chimerapy.pipeline import MAX_NODES, Pipeline, PipelineError
from support.api import base_url, bearer_client, cookie_client

pytestmark = pytest.mark.timeout(60)


def base(manager) -> str:
    return base_url(manager)


def test_cookie_requests_from_another_origin_are_refused(make_manager):
    manager = make_manager()
    own = base(manager)

    async def scenario():
        http = await cookie_client(manager)
        try:
            evil = {"Origin": "http://localhost:8080"}
            async with http.post("/api/collect", headers=evil) as response:
                answer = await response.json()
                assert response.status == 403 and "http://localhost:8080" in answer["error"], answer
            async with http.post("/api/shutdown", headers={"Origin": "null"}) as response:
                assert response.status == 403
            async with http.post("/api/start") as response:  # a POST without an Origin
                assert response.status == 403 and "without an Origin" in (await response.json())["error"]
            async with http.get("/api/state", headers={"Sec-Fetch-Site": "same-site"}) as response:
                assert response.status == 403  # e.g. a <script src> from another port of the host
            # the dashboard's own page: served (409 = it reached the Manager, which is idle)
            async with http.post("/api/collect", headers={"Origin": own}) as response:
                assert response.status == 409 and "idle" in (await response.json())["error"]
            async with http.get("/api/state", headers={"Sec-Fetch-Site": "same-origin"}) as response:
                assert response.status == 200
            async with http.get("/api/state") as response:  # a same-origin GET carries no Origin
                assert response.status == 200
            # the events WebSocket: refused from another origin or without one; served from its own
            for headers in ({"Origin": "http://127.0.0.1:1"}, {}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect("/api/events", headers=headers)
                assert refused.value.status == 403
            async with http.ws_connect("/api/events", origin=own) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
        finally:
            await http.close()
        # the bearer token works from anywhere: it proves knowledge of the secret
        async with bearer_client(manager) as bearer:
            async with bearer.post("/api/collect", headers={"Origin": "http://elsewhere"}) as response:
                assert response.status == 409
            async with bearer.ws_connect("/api/events", origin="http://elsewhere") as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
        assert manager.state == "idle"

    asyncio.run(scenario())


def test_oversize_undecodable_and_deep_json_bodies_get_a_4xx_naming_the_problem(make_manager):
    manager = make_manager()

    async def scenario():
        async with bearer_client(manager) as http:
            async def post(body: bytes) -> tuple[int, str]:
                async with http.post("/api/pipeline", data=body,
                                     headers={"Content-Type": "application/json"}) as response:
                    return response.status, (await response.json())["error"]

            status, error = await post(b"{" + b" " * (MAX_JSON_BYTES + 10) + b"}")
            assert status == 413 and str(MAX_JSON_BYTES) in error

            async def chunks():  # no Content-Length: refused while streaming
                for _ in range(MAX_JSON_BYTES // 65536 + 8):
                    yield b" " * 65536

            async with http.post("/api/pipeline", data=chunks()) as response:
                assert response.status == 413
            status, error = await post(b"\xff\xfe{}")
            assert status == 400 and "UTF-8" in error
            status, error = await post(b'{"nodes": [1, 2,')
            assert status == 400 and "not valid JSON" in error and "line 1" in error
            status, error = await post(b"[" * 100_000 + b"]" * 100_000)
            assert status == 400 and "nested more than" in error
            status, error = await post(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
            assert status == 400 and f"{MAX_JSON_DEPTH} levels" in error
            status, error = await post(b"")
            assert status == 400 and "empty" in error
            async with http.get("/api/state") as response:  # the Manager is fine
                assert response.status == 200
        assert manager.state == "idle"

    asyncio.run(scenario())


def pipeline_of(count: int, registry: str = "test.nothing") -> dict:
    names = [f"n{i}" for i in range(count)]
    return {"workers": [{"name": "w1"}, {"name": "w2"}],
            "nodes": [{"name": name, "registry": registry} for name in names],
            "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(names)],
            "mapping": {"w1": names[: count // 2], "w2": names[count // 2:]}}


def test_pipelines_over_the_node_limit_are_refused_fast(make_manager):
    for count in (MAX_NODES + 1, 10_000):
        started = time.process_time()
        with pytest.raises(PipelineError) as caught:
            Pipeline.parse(pipeline_of(count))
        spent = time.process_time() - started
        print(f"{count}-node pipeline refused in {spent * 1000:.1f} ms of CPU")
        expected = f"{count} nodes: a pipeline holds at most {MAX_NODES} nodes; split it into several pipelines"
        assert caught.value.problems == [("nodes", expected)]
        assert spent < 1.0
    manager = make_manager()

    async def scenario():
        async with bearer_client(manager) as http, \
                http.post("/api/pipeline", json=pipeline_of(MAX_NODES + 1)) as response:
            answer = await response.json()
            assert response.status == 400 and "at most 1000 nodes" in answer["error"]

    asyncio.run(scenario())


def test_a_100_node_pipeline_validates_in_well_under_a_second(monkeypatch, tmp_path):
    folder = tmp_path / "pack"
    info = folder / "limits_pack-1.0.dist-info"
    info.mkdir(parents=True)
    (folder / "limits_pack.py").write_text("import chimerapy as cp\n\nclass Relay(cp.Node):\n    pass\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: limits-pack\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[chimerapy.nodes]\ntest.relay = limits_pack:Relay\n")
    monkeypatch.syspath_prepend(str(folder))
    for count in (100, MAX_NODES):
        data = pipeline_of(count, "test.relay")
        started = time.perf_counter()
        pipeline = Pipeline.parse(json.loads(json.dumps(data)))
        parsed = time.perf_counter() - started
        result = check_pipeline(pipeline)
        graph, mapping = result.graph, result.mapping
        built = time.perf_counter() - started - parsed
        print(f"{count}-node pipeline: parsed in {parsed * 1000:.1f} ms, checked and built in {built * 1000:.1f} ms")
        assert len(graph) == count and sum(map(len, mapping.values())) == count
        assert parsed < 5.0 and built < 5.0  # generous: catches the quadratic blow-up, not noise
