"""send_packages: code that only the Manager has runs on a Worker that never installed it."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import chimerapy as cp
from chimerapy.pack_template import create_pack
from chimerapy.worker import Worker
from support.nodes import CountingSource
from support.venvs import ROOT, make_venv, pip_freeze

MANAGER_SIDE = '''
import json, sys, time
import chimerapy as cp
from chimerapy import registry

class Sink(cp.Node):
    def step(self, data_chunks):
        pass

def main():
    logdir, worker, spec, kind = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    manager = cp.Manager(logdir=logdir, port=0)
    print("PORT", manager.port, manager.token, manager.fingerprint, flush=True)
    assert manager.wait_for_workers([worker], timeout=120)
    if kind == "pack":
        source = registry.create("eyetracker.counter", "source", rate=200)
    else:
        import labnodes.square
        source = labnodes.square.Squares("source")
    graph = cp.Graph()
    graph.add_edge(source, Sink("sink"))
    try:
        manager.commit_graph(graph, {worker: ["source", "sink"]}, send_packages=[spec], strict=True)
    except cp.CommitError as error:
        print("COMMIT-ERROR", json.dumps(str(error)), flush=True)
        manager.shutdown()
        return
    manager.start()
    time.sleep(1.0)
    manager.stop()
    stats = manager.final_stats
    print("RESULT", json.dumps({"sent": stats["source"]["outputs"],
                                "received": stats["sink"]["inputs"]["source"]["received"],
                                "errors": [str(e) for e in manager.errors]}), flush=True)
    manager.shutdown()

if __name__ == "__main__":
    main()
'''

LAB_PACKAGE = {
    "labnodes/__init__.py": "",
    "labnodes/square.py": '''
        import time
        import chimerapy as cp
        from labnodes.maths import square

        class Squares(cp.Node):
            kind = "source"

            def prep(self):
                self.i = 0

            def step(self):
                time.sleep(0.005)
                self.i += 1
                return square(self.i)
    ''',
    "labnodes/maths.py": "def square(x):\n    return x * x\n",
}


@pytest.fixture(scope="module")
def core_only_python(tmp_path_factory):
    """A venv with chimerapy-core and its dependencies only (no node pack)."""
    return make_venv(tmp_path_factory.mktemp("core-venv"), "-e", str(ROOT / "packages" / "core"))


def run_manager_and_bare_worker(tmp_path, python, spec, kind, pythonpath):
    script = tmp_path / "manager_side.py"
    script.write_text(MANAGER_SIDE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    manager = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs"), "bare", json.dumps(spec), kind],
                               env=env, stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        _, port, token, fingerprint = manager.stdout.readline().split()
        worker_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHIMERAPY_TOKEN")}
        worker = subprocess.Popen([str(python), "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1", "--port", port,
                                   "--name", "bare", "--fingerprint", fingerprint],
                                  env={**worker_env, "CHIMERAPY_TOKEN": token})
        output = manager.communicate(timeout=180)[0]
        assert worker.wait(60) == 0
    finally:
        for process in (manager, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    return output


@pytest.mark.timeout(600)
def test_installed_pack_runs_on_a_worker_that_has_only_the_core(tmp_path, core_only_python):
    pack = create_pack("eyetracker", tmp_path / "pack")
    target = tmp_path / "installed"  # the pack is installed here, beside the Manager only
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(pack)],
                   check=True, timeout=300, capture_output=True)
    before = pip_freeze(core_only_python)
    output = run_manager_and_bare_worker(tmp_path, core_only_python, {"name": "chimerapy-nodes-eyetracker"}, "pack",
                                         [target])
    result = json.loads(output.split("RESULT", 1)[1])
    assert result["sent"] > 50 and result["received"] == result["sent"] and result["errors"] == []
    assert pip_freeze(core_only_python) == before  # nothing was installed on the Worker


@pytest.mark.timeout(600)
def test_local_package_folder_runs_on_a_worker_that_never_saw_it(tmp_path, core_only_python):
    for relative, text in LAB_PACKAGE.items():
        path = tmp_path / "src" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    before = pip_freeze(core_only_python)
    output = run_manager_and_bare_worker(
        tmp_path, core_only_python, {"name": "labnodes", "path": str(tmp_path / "src" / "labnodes")}, "folder",
        [tmp_path / "src"])
    result = json.loads(output.split("RESULT", 1)[1])
    assert result["sent"] > 50 and result["received"] == result["sent"] and result["errors"] == []
    assert pip_freeze(core_only_python) == before


def write_package(root, name, files):
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / name


@pytest.mark.timeout(120)
def test_bad_send_packages_entries_are_named(cluster, tmp_path):
    manager, _ = cluster("w1")
    graph = cp.Graph()
    graph.add_node(CountingSource("src"))
    (tmp_path / "empty").mkdir()
    for spec, match in [
        ({"name": "x", "path": str(tmp_path / "missing")}, r"send_packages\[0\]: path .*missing' does not exist"),
        ({"name": "x", "path": str(tmp_path / "empty")}, r"holds no Python package"),
        ({"name": "no-such-distribution"}, r"no installed distribution is named 'no-such-distribution'"),
        (42, r"give a dict with 'name'"),
    ]:
        with pytest.raises(ValueError, match=match):
            manager.commit_graph(graph, {"w1": ["src"]}, send_packages=[spec])
    assert manager.state == "idle"


@pytest.mark.timeout(120)
def test_import_failure_on_the_worker_fails_the_commit_with_its_traceback(cluster, tmp_path):
    manager, _ = cluster("w1")
    folder = write_package(tmp_path, "needsdriver", {
        "__init__.py": "import driver_that_only_the_manager_has\n"})
    graph = cp.Graph()
    graph.add_node(CountingSource("src"))
    with pytest.raises(cp.CommitError) as info:
        manager.commit_graph(graph, {"w1": ["src"]}, send_packages=[{"name": "needsdriver", "path": str(folder)}], strict=True)
    text = str(info.value)
    assert "needsdriver" in text and "fails to import on Worker w1" in text
    assert "ModuleNotFoundError: No module named 'driver_that_only_the_manager_has'" in text


@pytest.mark.timeout(120)
def test_a_package_is_sent_once_and_conflicts_are_reported(make_manager, make_worker, tmp_path, monkeypatch):
    installs = []
    original = Worker._install_packages

    async def counting(self, data):
        installs.extend(p["name"] for p in data["packages"])
        return await original(self, data)

    monkeypatch.setattr(Worker, "_install_packages", counting)
    manager = make_manager()
    make_worker("w1", manager)
    folder = write_package(tmp_path, "helpers", {"__init__.py": "VALUE = 1\n"})
    spec = {"name": "helpers", "path": str(folder)}
    for _ in range(2):
        graph = cp.Graph()
        graph.add_node(CountingSource("src"))
        assert manager.commit_graph(graph, {"w1": ["src"]}, send_packages=[spec])
    assert installs == ["helpers"]  # the second commit found it by its content hash
    # a Worker that has another version of the distribution installed is not overridden silently
    project = tmp_path / "fake-core"
    (project / "src" / "chimerapy_fake").mkdir(parents=True)
    (project / "src" / "chimerapy_fake" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text('[project]\nname = "chimerapy-core"\nversion = "9.9.9"\n')
    with pytest.raises(cp.CommitError, match=r"has 0\.1\.0 installed, the Manager sends 9\.9\.9.*override"):
        manager.commit_graph(graph, {"w1": ["src"]}, send_packages=[{"name": "chimerapy-core", "path": str(project)}], strict=True)


@pytest.mark.timeout(600)
def test_template_pack_installs_and_lists_beside_a_broken_pack(tmp_path):
    good = create_pack("eyetracker", tmp_path / "good")
    broken = create_pack("broken", tmp_path / "broken")
    module = broken / "src" / "chimerapy_nodes_broken" / "counter.py"
    module.write_text(module.read_text() + '\nraise ImportError("libfoo is missing on this computer")\n')
    python = make_venv(tmp_path / "venv", "-e", str(ROOT / "packages" / "core"), str(good), str(broken), "pytest")
    listing = subprocess.run([str(python), "-m", "chimerapy.cli.main", "nodes"], capture_output=True, text=True,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    line = next(l for l in listing.stdout.splitlines() if l.startswith("eyetracker.counter"))
    assert "source" in line and "chimerapy-nodes-eyetracker 0.1.0" in line
    broken_line = next(l for l in listing.stdout.splitlines() if l.startswith("broken.counter"))
    assert "BROKEN" in broken_line and "libfoo is missing" in broken_line
    own_tests = subprocess.run([str(python), "-m", "pytest", "-q", str(good / "tests")], capture_output=True,
                               text=True, timeout=300, cwd=good)
    assert own_tests.returncode == 0 and "1 passed" in own_tests.stdout, own_tests.stdout + own_tests.stderr
