"""Registered methods: called on a running node from Python and the REST API, checked, logged."""

from __future__ import annotations

import asyncio

import aiohttp
import chimerapy as cp
import pytest
from support.api import bearer_client
from support.nodes import Tunable

pytestmark = pytest.mark.timeout(90)


async def next_level(ws: aiohttp.ClientWebSocketResponse, wanted: float, timeout: float = 20.0) -> None:
    """Wait for a preview of node "tune" showing ``wanted``."""
    async def seen() -> None:
        while True:
            event = await ws.receive_json()
            if event["type"] == "preview" and event["node"] == "tune" and event["records"]["level"]["value"] == wanted:
                return

    await asyncio.wait_for(seen(), timeout)


def test_a_registered_method_changes_a_running_nodes_output(cluster):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(Tunable("tune"))
    assert manager.commit_graph(graph, {"w1": ["tune"]})
    with pytest.raises(cp.StateError, match="cannot request_registered_method"):
        manager.request_registered_method("tune", "set_level", {"level": 2.0})
    manager.start()

    async def scenario():
        async with bearer_client(manager) as http:
            async with http.get("/api/methods") as response:
                (set_level,) = [m for m in (await response.json())["methods"]["tune"] if m["name"] == "set_level"]
            assert set_level["doc"] == "Set the emitted level; returns the previous one."
            assert [(p["name"], p["annotation"], p["default"]) for p in set_level["parameters"]] == [
                ("level", "float", None), ("note", "str", "''")]
            async with http.ws_connect("/api/events") as ws:
                await ws.receive_json()  # the snapshot
                await next_level(ws, 1.0)
                previous = await asyncio.to_thread(manager.request_registered_method, "tune", "set_level",
                                                   {"level": 5})
                assert previous == 1.0
                await next_level(ws, 5.0)
                async with http.post("/api/nodes/tune/methods/set_level", json={"level": 7.5}) as response:
                    assert response.status == 200 and (await response.json())["result"] == 5.0
                await next_level(ws, 7.5)
            for params, status, message in [({"level": "seven"}, 422, "'level' takes float, not 'seven'"),
                                            ({"levl": 1}, 422, "its parameters: level, note"),
                                            ([1], 400, "send the parameters as an object")]:
                async with http.post("/api/nodes/tune/methods/set_level", json=params) as response:
                    body = await response.json()
                    assert response.status == status and message in body["error"] + body.get("traceback", ""), body
            async with http.post("/api/nodes/tune/methods/nope", json={}) as response:
                body = await response.json()
                assert response.status == 422 and "its registered methods: fail, set_level" in body["traceback"]
            async with http.post("/api/nodes/ghost/methods/set_level", json={}) as response:
                assert response.status == 400 and "no node named 'ghost'" in (await response.json())["error"]

    asyncio.run(scenario())
    with pytest.raises(cp.NodeError) as raised:
        manager.request_registered_method("tune", "fail")
    assert raised.value.phase == "method" and "RuntimeError: fails on purpose" in raised.value.remote_traceback
    manager.stop()
    log = (manager.session.path / "chimerapy.log").read_text()
    assert "called tune.set_level(level=5) -> 1.0" in log and "called tune.set_level(level=7.5) -> 5.0" in log
    assert "tune.fail() failed" in log
