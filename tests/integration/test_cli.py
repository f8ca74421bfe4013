"""The chimerapy command line: run a pipeline file to an archive, Ctrl-C included; validate."""

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def chimerapy(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "chimerapy.cli.main", *args], capture_output=True, text=True,
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
    assert "dashboard: http://127.0.0.1:" in result.stdout and "?token=" in result.stdout
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
        url = re.search(r"dashboard: (http://[\d.]+:\d+)/\?token=(\S+)", "".join(lines))
        assert url, lines
        request = urllib.request.Request(f"{url[1]}/api/stop", method="POST", data=b"",
                                         headers={"Authorization": f"Bearer {url[2]}"})
        with urllib.request.urlopen(request, timeout=90) as response:  # stops and collects
            answer = json.loads(response.read())
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
    for expected in [f"nodes[{index['camera']}].registry: no node is registered as 'video.test_patern'; "
                     f"did you mean 'video.test_pattern'",
                     f"nodes[{index['microphone']}].params.samplerat: audio.tone has no option 'samplerat' "
                     f"(did you mean 'samplerate'?)",
                     "edges[0].target: unknown node 'vidoe' (did you mean 'video'?)",
                     f"mapping.camera-laptop[{ghost}]: unknown node 'ghost'"]:
        assert expected in result.stderr, result.stderr
    (tmp_path / "bad.json").write_text("{ not json")
    result = chimerapy("validate", str(tmp_path / "bad.json"), timeout=60)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_run_reports_a_missing_file(tmp_path):
    result = chimerapy("run", str(tmp_path / "nope.json"), timeout=60)
    assert result.returncode == 2 and "no such file" in result.stderr


@pytest.mark.timeout(60)
def test_manager_prints_how_to_load_a_pipeline(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "chimerapy.cli.main", "manager", "--port", "0", "--logdir",
                                str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(6)]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = "".join(lines)
    origin = re.search(r"dashboard: (http://[\d.]+:\d+)/\?token=", text)
    assert origin, text
    assert "Load a pipeline: build or open one in the dashboard's editor" in text
    assert f"--data @pipeline.json {origin[1]}/api/pipeline" in text and f"{origin[1]}/api/start" in text
    assert "$CHIMERAPY_TOKEN" in text  # the token itself stays off the suggested command line
