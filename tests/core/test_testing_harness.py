"""chimerapy.testing: nodes run in-process, through the real wire format and recorder."""

import json

import numpy as np
import pytest

import chimerapy as cp
from chimerapy.testing import NodeHarness, run_node
from support.nodes import CountingSource, Doubler, RaisesIn


def test_source_steps_and_filter_inputs():
    outputs = run_node(CountingSource("src"), steps=3)
    assert [c.get("i")["value"] for c in outputs] == [0, 1, 2]
    assert [c.seq for c in outputs] == [0, 1, 2] and outputs[0].producer == "src"
    doubled = run_node(Doubler("d"), inputs=[{"src": {"i": 4}}, {"src": outputs[2]}])
    assert [c.get("i")["value"] for c in doubled] == [8, 4]


def test_inputs_arrive_as_in_a_cluster():
    class Inspect(cp.Node):
        def step(self, data_chunks):
            chunk = data_chunks["cam"]
            frame = chunk.get("frame")["value"]
            return {"writeable": frame.flags.writeable, "seq": chunk.seq, "owners": chunk.get("frame")["ownership"]}

    frame = np.zeros((4, 4, 3), np.uint8)
    (first, second) = run_node(Inspect("i"), inputs=[{"cam": {"frame": frame}}] * 2)
    assert first.get("default")["value"] == {"writeable": False, "seq": 0, "owners": ["cam"]}
    assert second.get("default")["value"]["seq"] == 1


def test_recordings_land_in_the_directory(tmp_path):
    class Notes(cp.Node):
        def step(self, data_chunks=None):
            self.save_json("notes", {"n": 1})
            self.save_text("log", "line\n")

    with NodeHarness(Notes("notes"), directory=tmp_path) as harness:
        harness.step()
        harness.step()
    lines = (tmp_path / "notes.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"] for line in lines] == [{"n": 1}, {"n": 1}]
    assert (tmp_path / "log.txt").read_text() == "line\nline\n"
    assert set(harness.files()) >= {tmp_path / "notes.jsonl", tmp_path / "log.txt"}


@pytest.mark.parametrize("phase", ["prep", "step", "teardown"])
def test_node_errors_are_raised_with_the_traceback(phase):
    with pytest.raises(cp.NodeError) as info:
        run_node(RaisesIn("bad", phase), steps=1)
    assert info.value.phase == phase and info.value.node == "bad"
    assert f"fails in {phase} on purpose" in info.value.remote_traceback


def test_run_node_needs_inputs_or_steps():
    with pytest.raises(ValueError, match="either inputs"):
        run_node(CountingSource("src"))
