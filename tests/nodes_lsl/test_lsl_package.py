"""The pack as the core's registry and the Workers see it: entry points, node conventions, imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.packs import assert_declared, assert_node_conventions, load

pytestmark = pytest.mark.timeout(60)

NODES = {
    "lsl.inlet": ("chimerapy_nodes_lsl.inlet:LslInlet", "source"),
    "lsl.outlet": ("chimerapy_nodes_lsl.outlet:LslOutlet", "sink"),
}


def test_every_node_has_an_entry_point():
    assert_declared("chimerapy-nodes-lsl", "chimerapy_nodes_lsl", {name: target for name, (target, _) in NODES.items()})


@pytest.mark.parametrize("registry_name", sorted(NODES))
def test_node_classes_follow_the_pack_conventions(registry_name):
    target, kind = NODES[registry_name]
    assert_node_conventions(load(target), kind, **({"stream": "EEG"} if registry_name == "lsl.inlet" else {}))


def test_importing_the_pack_does_not_load_liblsl():
    code = "import sys, chimerapy_nodes_lsl; sys.exit('pylsl' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=30).returncode == 0


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "at least one of stream"),
    ({"stream": "a'b\"c"}, "both ' and"),
    ({"stream": "eeg", "resolve_timeout": 0}, "resolve_timeout"),
    ({"stream": "eeg", "max_chunk": 0}, "max_chunk"),
    ({"stream": "eeg", "record_name": "a/b"}, "not a valid file name"),
])
def test_inlet_options_are_checked_when_made(options, problem):
    from chimerapy_nodes_lsl import LslInlet

    with pytest.raises(ValueError, match=problem):
        LslInlet("in", **options)


@pytest.mark.parametrize(("options", "problem"), [
    ({"stream": ""}, "stream must be a non-empty str"),
    ({"rate": -1.0}, "rate must be >= 0"),
    ({"channel_labels": ["a", 2]}, "channel_labels"),
])
def test_outlet_options_are_checked_when_made(options, problem):
    from chimerapy_nodes_lsl import LslOutlet

    with pytest.raises(ValueError, match=problem):
        LslOutlet("out", **options)


def test_registry_lists_and_builds_the_nodes_from_pipeline_params():
    from chimerapy import registry

    info = registry.find("lsl.inlet")
    assert not info.broken and info.kind == "source"
    assert [p.name for p in info.parameters][:3] == ["stream", "type", "source_id"]
    inlet = registry.create("lsl.inlet", "eeg_in", stream="EEG", type="EEG", record=True)
    assert (inlet.name, inlet.stream, inlet.type, inlet.record) == ("eeg_in", "EEG", "EEG", True)
    outlet = registry.create("lsl.outlet", "markers_out", stream="cp", type="Markers")
    assert (outlet.name, outlet.stream, outlet.type, outlet.source_id) == ("markers_out", "cp", "Markers", "")
