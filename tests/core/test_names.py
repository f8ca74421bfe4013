"""The one name rule (chimerapy.names) and every place a name enters: Node(), Worker(), Graph,
pipeline files, the REST API, cp-worker --name, the save_* record names and session ids."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import chimerapy as cp
import numpy as np
import pytest
from chimerapy.errors import ChimeraPyError, InvalidNameError, RecordError
from chimerapy.names import MAX_NAME_LENGTH, check_name, is_valid_name
from chimerapy.pipeline import Pipeline, PipelineError, load
from chimerapy.private import scratch_base
from chimerapy.records import Recorder
from chimerapy.worker.files import FileStore
from chimerapy.worker.join import open_manager_socket
from support.api import bearer_client

pytestmark = pytest.mark.timeout(60)

HOSTILE = ["../x", "/abs/path", "a/b", "a\\b", "a\x00b", "line\nbreak", "x" * 5000, "", ".hidden", "..",
           "with space", "semi;colon", "tab\tname", "quote'", "\u202eevil"]
LEGITIMATE = ["cam", "face-detect", "Gen1", "camera_1", "a.b", "Kamera-2", "名前", "relay01", "x" * MAX_NAME_LENGTH,
              "w1", "lab-pc", "20261128-215118-abc123"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_naming_the_character_its_position_and_the_rule(name):
    with pytest.raises(InvalidNameError) as caught:
        check_name("node", name)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, ChimeraPyError)
    message = str(error)
    assert "\n" not in message and "\x00" not in message  # a name cannot forge a log line
    assert "letters, digits, '-', '_' and '.'" in message and "64 characters" in message  # the rule
    assert error.kind == "node" and error.value == name
    bad = next((i for i, c in enumerate(name) if not (c.isalpha() or c.isdigit() or c in "-_.")), None)
    if len(name) > MAX_NAME_LENGTH:
        assert "5000 characters" in message
    elif bad is not None:
        assert error.position == bad and f"position {bad}" in message
    elif name.startswith("."):
        assert error.position == 0 and "starts with '.'" in message


def test_the_error_describes_the_offending_character():
    for name, described in (("a/b", "'/' (path separator)"), ("a b", "a space"), ("a\x00b", "NUL"),
                            ("line\nbreak", "a newline"), ("a;b", "';'")):
        with pytest.raises(InvalidNameError, match=None) as caught:
            check_name("Worker", name)
        assert described in str(caught.value) and str(caught.value).startswith("Worker name ")


@pytest.mark.parametrize("name", LEGITIMATE)
def test_legitimate_names_pass(name):
    assert check_name("node", name) == name and is_valid_name(name)


def test_non_strings_are_refused():
    for value in (3, None, b"cam"):
        with pytest.raises(InvalidNameError, match="not a str"):
            check_name("node", value)


@pytest.mark.parametrize("name", ["../x", "/abs/path", "a\nb", "x" * 65])
def test_node_and_worker_constructors_refuse_hostile_names(name):
    with pytest.raises(InvalidNameError, match="node name"):
        cp.Node(name)
    scratch = scratch_base()
    before = set(scratch.iterdir()) if scratch.exists() else set()
    with pytest.raises(InvalidNameError, match="Worker name"):
        cp.Worker(name, port=0)
    assert (set(scratch.iterdir()) if scratch.exists() else set()) == before  # refused before any folder is made


def test_graph_refuses_a_node_renamed_after_creation():
    node = cp.Node("fine")
    node.name = "../escape"
    graph = cp.Graph()
    with pytest.raises(InvalidNameError, match="node name '../escape'"):
        graph.add_node(node)
    with pytest.raises(InvalidNameError):
        graph.add_edge(cp.Node("other"), node)
    assert len(graph) == 1 and graph.names() == ["other"]


def hostile_pipeline() -> dict:
    return {
        "workers": [{"name": "w1"}, {"name": "/etc"}],
        "nodes": [{"name": "../x", "registry": "nothing.here"}, {"name": "ok", "registry": "nothing.here"}],
        "edges": [{"source": "../x", "target": "ok"}],
        "mapping": {"w1": ["../x", "ok"]},
    }


def test_pipeline_files_name_each_bad_name_by_its_json_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(hostile_pipeline()))
    with pytest.raises(PipelineError) as caught:
        load(path)
    problems = dict(caught.value.problems)
    assert "node name '../x' is refused" in problems["nodes[0].name"] and "position 2" in problems["nodes[0].name"]
    assert "Worker name '/etc' is refused" in problems["workers[1].name"]
    assert "nodes[1].name" not in problems


def test_save_calls_refuse_hostile_record_names(tmp_path):
    recorder = Recorder(tmp_path / "rec")
    frame = np.zeros((8, 8, 3), np.uint8)
    calls = {
        "save_video": lambda name: recorder.save_video(name, frame, 10),
        "save_audio": lambda name: recorder.save_audio(name, np.zeros(16, np.int16), 8000, 1),
        "save_tabular": lambda name: recorder.save_tabular(name, {"a": 1}),
        "save_image": lambda name: recorder.save_image(name, frame),
        "save_json": lambda name: recorder.save_json(name, {"a": 1}),
        "save_text": lambda name: recorder.save_text(name, "x"),
    }
    try:
        for method, call in calls.items():
            for name in ("../escape", "/abs/path", "a\nb", "x" * 65):
                with pytest.raises(RecordError) as caught:
                    call(name)
                assert caught.value.record == name, method
                assert "letters, digits, '-', '_' and '.'" in str(caught.value), method
        calls["save_text"]("fine")
    finally:
        recorder.close()
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["fine.timestamps.csv", "fine.txt"]
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()


def test_session_ids_are_checked_before_a_path_is_built(tmp_path):
    store = FileStore(tmp_path / "scratch")
    for session in ("../outside", "/etc", "a/b", ".."):
        with pytest.raises(InvalidNameError, match="session name"):
            store.session_dir(session)
    assert store.session_dir("20261128-215118-abc123") == tmp_path / "scratch" / "20261128-215118-abc123"


def test_cp_worker_refuses_a_hostile_name_before_connecting(tmp_path):
    result = subprocess.run([sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", "9",
                             "--name", "../x"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "Worker name '../x' is refused" in result.stderr and "letters, digits" in result.stderr
    assert "could not connect" not in result.stderr


def test_rest_refuses_hostile_names_in_pipelines_and_session_ids(make_manager):
    manager = make_manager()

    async def scenario():
        async with bearer_client(manager) as http:
            async with http.post("/api/pipeline", json=hostile_pipeline()) as response:
                answer = await response.json()
                assert response.status == 400, answer
                paths = {problem["path"]: problem["message"] for problem in answer["problems"]}
                assert "refused" in paths["nodes[0].name"] and "refused" in paths["workers[1].name"]
            for session in (".hidden", "a%0Ab", "a%20b"):
                async with http.get(f"/api/sessions/{session}/files") as response:
                    answer = await response.json()
                    assert response.status == 400 and "session id" in answer["error"], answer
        assert manager.state == "idle" and [p for p in manager.root_logdir.iterdir() if p.name != ".chimerapy"] == []

    asyncio.run(scenario())


def test_pipeline_checks_names_without_a_registry():
    with pytest.raises(PipelineError) as caught:
        Pipeline.parse(hostile_pipeline())
    assert any(path == "nodes[0].name" for path, _ in caught.value.problems)


def test_the_manager_refuses_a_worker_registering_under_a_hostile_name(make_manager):
    from chimerapy.net import control

    manager = make_manager()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            ws, _ = await open_manager_socket(http, manager.host, manager.port, token=manager.token,
                                              pin=manager.fingerprint, timeout=10)
            register = control.Envelope("register", {"name": "../../etc", "id": "x"}, id=1)
            await ws.send_str(control.encode(register))
            reply = control.decode((await ws.receive(timeout=10)).data)
            assert not reply.ok and "Worker name '../../etc' is refused" in reply.error

    asyncio.run(scenario())
    assert manager.workers == {}
