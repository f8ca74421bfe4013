"""The pack as the core's registry and the Workers see it: entry points, node conventions, imports."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import pytest
from support.packs import assert_declared, load

import chimerapy as cp

pytestmark = pytest.mark.timeout(60)

NODES = {
    "audio.microphone": ("chimerapy_nodes_audio.microphone:Microphone", "source"),
    "audio.file": ("chimerapy_nodes_audio.file:AudioFile", "source"),
    "audio.tone": ("chimerapy_nodes_audio.tone:Tone", "source"),
    "audio.level": ("chimerapy_nodes_audio.level:AudioLevel", "step"),
    "audio.recorder": ("chimerapy_nodes_audio.recorder:AudioRecorder", "sink"),
}


def test_every_node_has_an_entry_point():
    assert_declared("chimerapy-nodes-audio", "chimerapy_nodes_audio", {name: target for name, (target, _) in NODES.items()})


@pytest.mark.parametrize("registry_name", sorted(NODES))
def test_node_classes_follow_the_pack_conventions(registry_name):
    target, kind = NODES[registry_name]
    cls = load(target)
    assert issubclass(cls, cp.Node) and cls.__dict__["kind"] == kind
    summary = inspect.getdoc(cls).splitlines()[0]
    assert summary.endswith(".") and len(summary) < 100
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert parameters[0].name == "name" and isinstance(parameters[0].default, str)
    for option in parameters[1:]:
        assert option.kind is option.KEYWORD_ONLY, option
        assert option.annotation is not option.empty and option.default is not option.empty, option
    node = cls(**({"path": "x.wav"} if registry_name == "audio.file" else {}))
    assert node.name == parameters[0].default
    clone = pickle.loads(pickle.dumps(node))  # only plain options until prep opens anything
    assert {k: v for k, v in vars(clone).items() if k != "_runtime"} == {
        k: v for k, v in vars(node).items() if k != "_runtime"
    }


def test_importing_the_pack_does_not_load_portaudio():
    code = "import sys, chimerapy_nodes_audio; sys.exit('sounddevice' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
