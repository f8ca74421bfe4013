"""The pack as the core's registry and the Workers see it: entry points, node conventions, imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.packs import assert_declared, assert_node_conventions, load


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
    assert_node_conventions(load(target), kind, **({"path": "x.wav"} if registry_name == "audio.file" else {}))


def test_importing_the_pack_does_not_load_portaudio():
    code = "import sys, chimerapy_nodes_audio; sys.exit('sounddevice' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
