"""The chimerapy command line: run a pipeline file to an archive, Ctrl-C included; validate."""

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def chimerapy(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "chimerapy.cli.main", *args], check=False, capture_output=True, text=True,
                          **kwargs)


def archive_of(output: str) -> Path:
    return Path(output.split("archive: ", 1)[1].split()[0])


def assert_complete_demo_archive(session: Path):
    meta = json.loads((session / "meta.json").read_text())
    assert all(item["complete"] for item in meta["collected"].values())
    assert (session / "camera-laptop" / "video" / "camera.mp4").stat().st_size > 0
    assert (session / "mic-laptop" / "audio" / "microphone.wav").stat().st_size > 44
    import av

    with av.open(str(session / "camera-laptop" / "video" / "camera.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    stamps = (session / "camera-laptop" / "video" / "camera.timestamps.csv").read_text().strip().splitlines()
    assert frames > 10 and len(stamps) - 1 == frames  # one timestamp per frame (plus the header)
    return meta


@pytest.mark.timeout(180)
def test_run_demo_for_its_runtime(tmp_path):
    result = chimerapy("run", str(EXAMPLES / "demo.json"), "--runtime", "3", "--logdir", str(tmp_path), timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dashboard (this link signs in once): https://127.0.0.1:" in result.stdout and "?code=" in result.stdout
    token = (tmp_path / ".chimerapy" / "token").read_text().strip()  # the Manager's private token file
    assert token not in result.stdout + result.stderr  # the token itself is never printed
    session = archive_of(result.stdout)
    assert session.parent == tmp_path
    meta = assert_complete_demo_archive(session)
    assert sorted(meta["workers"]) == ["camera-laptop", "mic-laptop"]


def start_forever_demo(tmp_path: Path) -> subprocess.Popen:
    """`chimerapy run` of the demo without a run time (until stopped), output piped."""
    pipeline = json.loads((EXAMPLES / "demo.json").read_text())
    pipeline["runtime"] = None  # until Ctrl-C
    path = tmp_path / "forever.json"
    path.write_text(json.dumps(pipeline))
    return subprocess.Popen([sys.executable, "-m", "chimerapy.cli.main", "run", str(path), "--logdir",
                             str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def post_as_a_script(logdir: Path, url: str) -> dict:
    """POST ``url`` as a script would: the token from the Manager's token file, its certificate pinned."""
    import aiohttp
    from chimerapy.net import auth, tls

    secrets = logdir / ".chimerapy"
    token = auth.read_token_file(secrets / "token")
    fingerprint = tls.load_identity(secrets / "tls" / tls.CERT_NAME, secrets / "tls" / tls.KEY_NAME).fingerprint
    async with aiohttp.ClientSession(headers=auth.bearer(token)) as http, \
            http.post(url, ssl=tls.pinned(fingerprint), timeout=aiohttp.ClientTimeout(total=90)) as response:
        return await response.json()


def wait_for_frames(process: subprocess.Popen) -> list[str]:
    """Read the run's output until its status table shows the recorder receiving; the lines read."""
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("video ") and line.split()[4].isdigit() and int(line.split()[4]) > 20:
            return lines
    pytest.fail("the pipeline never showed frames arriving:\n" + "".join(lines))


@pytest.mark.timeout(180)
def test_ctrl_c_mid_run_still_leaves_a_complete_archive(tmp_path):
    process = start_forever_demo(tmp_path)
    try:
        wait_for_frames(process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, out + err
    assert "stopping: the nodes drain" in err
    assert_complete_demo_archive(archive_of(out))


@pytest.mark.timeout(180)
def test_a_rest_stop_during_run_ends_it_normally(tmp_path):
    process = start_forever_demo(tmp_path)
    try:
        lines = wait_for_frames(process)
        url = re.search(r"dashboard \(this link signs in once\): (https://[\d.]+:\d+)/\?code=", "".join(lines))
        assert url, lines
        answer = asyncio.run(post_as_a_script(tmp_path / "runs", f"{url[1]}/api/stop"))  # stops and collects
        assert answer["state"] == "stopped" and all(item["complete"] for item in answer["collected"].values())
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, out + err
    assert "cannot stop()" not in out + err
    assert "stopped from the dashboard or the REST API" in out
    meta = assert_complete_demo_archive(archive_of(out))
    assert sorted(meta["collected"]) == ["camera-laptop", "mic-laptop"]


def broken_demo(tmp_path: Path, kind: str) -> Path:
    pipeline = json.loads((EXAMPLES / "demo.json").read_text())
    if kind == "cycle":
        pipeline["edges"].append({"source": "video", "target": "camera"})
    else:
        pipeline["nodes"][0]["params"]["fps"] = "thirty"
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(pipeline))
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("cycle", "edges: the graph has a cycle: camera -> faces -> overlay -> video -> camera"),
    ("type", "nodes[0].params.fps: video.test_pattern's option 'fps' takes float, not 'thirty' (a string)"),
])
def test_validate_refuses_what_run_refuses_with_the_same_message(tmp_path, kind, message):
    path = broken_demo(tmp_path, kind)
    validated = chimerapy("validate", str(path), timeout=60)
    ran = chimerapy("run", str(path), "--logdir", str(tmp_path / "runs"), timeout=60)
    assert validated.returncode == ran.returncode == 2
    assert message in validated.stderr and validated.stderr == ran.stderr
    assert "dashboard:" not in ran.stdout and not (tmp_path / "runs").exists()  # nothing was started


def test_a_former_option_name_is_accepted_with_a_warning(tmp_path):
    pipeline = json.loads((EXAMPLES / "demo.json").read_text())
    audio = next(node for node in pipeline["nodes"] if node["registry"] == "audio.recorder")
    audio["params"] = {"record": "microphone"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(pipeline))
    result = chimerapy("validate", str(path), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "audio.recorder's option 'record' is now called 'record_name'" in result.stderr


def test_nodes_verbose_is_plain_text_with_option_descriptions():
    result = chimerapy("nodes", "-v", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for markup in ("``", ":class:", ":func:", ":meth:", ":mod:"):
        assert markup not in out
    # whole summaries (the test pattern's runs past its first source line) and described options
    assert "A moving test pattern: scrolling colour bars, a bouncing box, the frame number and time." in out
    assert re.search(r"^fps\s+float\s+30\.0\s+frames per second\.", out, re.MULTILINE), out
    assert re.search(r"^record_name\s+str\s+'audio'\s+the name of the recording in the archive", out, re.MULTILINE)
    assert "former option name: record (now record_name)" in out


def test_validate_names_json_paths_and_fixes(tmp_path):
    assert chimerapy("validate", str(EXAMPLES / "demo.json"), timeout=60).returncode == 0
    broken = json.loads((EXAMPLES / "demo.json").read_text())
    index = {node["name"]: i for i, node in enumerate(broken["nodes"])}
    broken["nodes"][index["camera"]]["registry"] = "video.test_patern"
    broken["nodes"][index["microphone"]]["params"]["samplerat"] = 8000
    broken["edges"][0]["target"] = "vidoe"
    broken["mapping"]["camera-laptop"].append("ghost")
    del broken["workers"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = chimerapy("validate", str(path), timeout=60)
    assert result.returncode == 2
    assert "workers: this field is required" in result.stderr
    broken["workers"] = [{"name": "camera-laptop"}, {"name": "mic-laptop"}]
    path.write_text(json.dumps(broken))
    result = chimerapy("validate", str(path), timeout=60)
    assert result.returncode == 2
    ghost = len(broken["mapping"]["camera-laptop"]) - 1
    for expected in [(f"nodes[{index['camera']}].registry: no node is registered as 'video.test_patern'; "
                      f"did you mean 'video.test_pattern'"),
                     (f"nodes[{index['microphone']}].params.samplerat: audio.tone has no option 'samplerat' "
                      f"(did you mean 'samplerate'?)"),
                     "edges[0].target: unknown node 'vidoe' (did you mean 'video'?)",
                     f"mapping.camera-laptop[{ghost}]: unknown node 'ghost'"]:
        assert expected in result.stderr, result.stderr
    (tmp_path / "bad.json").write_text("{ not json")
    result = chimerapy("validate", str(tmp_path / "bad.json"), timeout=60)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_run_reports_a_missing_file(tmp_path):
    result = chimerapy("run", str(tmp_path / "nope.json"), timeout=60)
    assert result.returncode == 2 and "no such file" in result.stderr


RERUN_PIPELINE = {
    "name": "rerun-me", "runtime": 2,
    "manager": {"host": "127.0.0.1", "port": 0},
    "workers": [{"name": "rerun-local"}],
    "nodes": [{"name": "camera", "registry": "video.test_pattern", "params": {"width": 64, "height": 48, "fps": 20}},
              {"name": "everything", "registry": "core.recorder", "params": {"fps": 20}}],
    "edges": [{"source": "camera", "target": "everything"}],
    "mapping": {"rerun-local": ["camera", "everything"]},
}


def frames_in(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.timeout(240)
def test_a_session_of_a_pipeline_file_runs_again_from_its_meta_json(tmp_path):
    path = tmp_path / "rerun.json"
    path.write_text(json.dumps(RERUN_PIPELINE))
    first = chimerapy("run", str(path), "--logdir", str(tmp_path / "runs"), timeout=150)
    assert first.returncode == 0, first.stdout + first.stderr
    session = archive_of(first.stdout)
    meta = json.loads((session / "meta.json").read_text())
    assert meta["pipeline"]["name"] == "rerun-me" and meta["pipeline"]["runtime"] == 2

    second = chimerapy("run", str(session / "meta.json"), timeout=150, cwd=str(tmp_path))
    assert second.returncode == 0, second.stdout + second.stderr
    again = archive_of(second.stdout)
    assert again != session and again.parent == session.parent  # a new session, beside the first
    rerun = json.loads((again / "meta.json").read_text())
    for key in ("name", "runtime", "nodes", "edges", "mapping", "workers"):
        assert rerun["pipeline"][key] == meta["pipeline"][key], key
    assert 1.5 < rerun["stop_time"] - rerun["start_time"] < 30
    assert frames_in(again / "rerun-local" / "everything" / "camera.frame.mp4") > 10


SCRIPT = '''
import sys
import time

import chimerapy as cp


class Count(cp.Node):
    def __init__(self, name, step=1, *, pause=0.05):
        super().__init__(name)
        self.step_size, self.pause = step, pause

    def prep(self):
        self.value = 0

    def step(self):
        time.sleep(self.pause)
        self.value += self.step_size
        self.save_tabular("values", {"value": self.value})


if __name__ == "__main__":
    manager = cp.Manager(logdir=sys.argv[1], port=0)
    worker = cp.Worker("script-local", port=0)
    worker.connect(manager.host, manager.port)
    graph = cp.Graph()
    graph.add_node(Count("count", 3, pause=0.02))
    manager.commit_graph(graph, {"script-local": ["count"]})
    manager.start()
    time.sleep(1.5)
    manager.stop()
    print("archive:", manager.session.path)
    manager.shutdown()
    worker.shutdown()
'''


@pytest.mark.timeout(240)
def test_a_session_of_a_python_script_runs_again_with_the_scripts_own_node_class(tmp_path):
    script = tmp_path / "lab" / "count_experiment.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    first = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], check=False,
                           capture_output=True, text=True, timeout=150, cwd=str(script.parent))
    assert first.returncode == 0, first.stdout + first.stderr
    session = archive_of(first.stdout)
    node = json.loads((session / "meta.json").read_text())["pipeline"]["nodes"][0]
    assert node["class"] == "count_experiment:Count" and node["file"] == str(script.resolve())
    assert node["params"] == {"step": 3, "pause": 0.02}

    second = chimerapy("run", str(session), timeout=150, cwd=str(tmp_path))  # elsewhere: found by its file
    assert second.returncode == 0, second.stdout + second.stderr
    values = (archive_of(second.stdout) / "script-local" / "count" / "values.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in values[1:4]] == ["3", "6", "9"]  # the recorded parameters


def test_run_names_a_node_class_that_cannot_be_imported(tmp_path):
    session = tmp_path / "runs" / "20260101-000000-abcdef"
    session.mkdir(parents=True)
    pipeline = {"name": "p", "workers": [{"name": "w"}], "edges": [], "mapping": {"w": ["ghost"]},
                "nodes": [{"name": "ghost", "class": "lab_script_gone:Ghost", "file": str(tmp_path / "gone.py")}]}
    (session / "meta.json").write_text(json.dumps({"session": session.name, "pipeline": pipeline}))
    result = chimerapy("run", str(session / "meta.json"), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nodes[0].class: node class 'lab_script_gone:Ghost' cannot be imported" in result.stderr
    assert "gone.py, does not exist any more" in result.stderr
@pytest.mark.timeout(120)
def test_manager_prints_a_join_command_that_works_and_never_the_token(tmp_path):
    """`chimerapy manager` prints a one-time dashboard link and a `cp-worker` command that pins the
    certificate and reads the token file; run as printed, that command joins."""
    import asyncio
    import os
    import shlex

    import aiohttp
    from chimerapy.net import auth, tls

    env = {k: v for k, v in os.environ.items() if k != auth.TOKEN_ENV}
    manager = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.main", "manager", "--port", "0", "--logdir",
                                str(tmp_path / "runs")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    worker = None
    try:
        printed = []
        while not printed or not printed[-1].startswith("Workers join with"):
            line = manager.stdout.readline()
            assert line, "the Manager ended early:\n" + "".join(printed) + manager.stderr.read()
            printed.append(line)
        command = manager.stdout.readline().strip()
        printed.append(command)
        token_file = tmp_path / "runs" / ".chimerapy" / "token"
        token = auth.read_token_file(token_file)  # 0600, or this raises
        assert token not in "".join(printed)
        fingerprint = command.split("--fingerprint ", 1)[1].split()[0]
        assert tls.parse_fingerprint(fingerprint) == fingerprint and f"--token-file {token_file}" in command
        url = next(line for line in printed if line.startswith("dashboard")).split()[-1]
        assert url.startswith("https://127.0.0.1:") and "?code=" in url
        argv = shlex.split(command.replace("<name>", "lab2"))
        assert argv[0] == "cp-worker"
        worker = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", *argv[1:]], env=env,
                                  stderr=subprocess.PIPE, text=True)
        assert "lab2 connected" in worker.stderr.readline()
        port = int(argv[argv.index("--port") + 1])

        async def workers() -> list[str]:
            async with aiohttp.ClientSession(headers=auth.bearer(token)) as http:
                async with http.get(f"https://127.0.0.1:{port}/api/state", ssl=tls.pinned(fingerprint)) as response:
                    return sorted((await response.json())["workers"])

        assert asyncio.run(workers()) == ["lab2"]
        # a service manager's stop (SIGTERM) ends each cleanly, as Ctrl-C does
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        manager.send_signal(signal.SIGTERM)
        rest, _ = manager.communicate(timeout=30)
        assert manager.returncode == 0 and "shutting down" in rest
    finally:
        for process in (worker, manager):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
@pytest.mark.timeout(60)
def test_manager_prints_how_to_load_a_pipeline(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.main", "manager", "--port", "0", "--logdir",
                                str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(9)]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = "".join(lines)
    origin = re.search(r"dashboard \(this link signs in once\): (https://[\d.]+:\d+)/\?code=", text)
    assert origin, text
    assert "Load a pipeline: open the dashboard and build or open one in its editor" in text
    assert f"{origin[1]}/api/pipeline" in text and "/api/start" in text
    token = (tmp_path / ".chimerapy" / "token").read_text().strip()
    assert "Authorization: Bearer <the token in" in text and token not in text
