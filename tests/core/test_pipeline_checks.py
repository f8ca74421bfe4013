"""One set of checks for pipelines (chimerapy.pipeline_checks) and node docs as plain text."""

import sys

import pytest
from chimerapy import docstrings, registry
from chimerapy.pipeline import PipelineError
from chimerapy.pipeline_checks import check_pipeline
from support.packs import fake_pack

SOURCE = '''
from typing import ClassVar, Sequence
import chimerapy as cp

class Source(cp.Node):
    """Makes frames of a given size, a
    long summary that goes on to a second line.

    Uses ``fps`` and :class:`~chimerapy.Node` and *only* that.

    Args:
        name: the node's name.
        fps: frames per second,
            a description on two lines.
        size: ``[width, height]``.
        label: a name or ``None``.
    """
    kind = "source"

    def __init__(self, name: str = "source", *, fps: float = 30.0, size: Sequence[int] = (4, 4),
                 label: str | None = None):
        super().__init__(name)
        if fps <= 0:
            raise ValueError(f"Source {name!r}: fps must be positive, got {fps}")

class Sink(cp.Node):
    """Stores what it gets.

    Args:
        name: the node's name.
        record_name: the name of the recording.
        record: the former name of record_name.
    """
    kind = "sink"
    renamed_options: ClassVar[dict[str, str]] = {"record": "record_name"}

    def __init__(self, name: str = "sink", *, record_name: str = "data", record: str | None = None):
        super().__init__(name)
        self.record_name = record if record is not None else record_name
'''


@pytest.fixture
def pack(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_pack(tmp_path, "lab-checks", "1.0.0", "lab_check_nodes", {"lab.source": "Source", "lab.sink": "Sink"},
              SOURCE)
    yield
    sys.modules.pop("lab_check_nodes", None)


def pipeline(**changes):
    data = {"workers": [{"name": "w1"}, {"name": "w2"}],
            "nodes": [{"name": "a", "registry": "lab.source", "params": {"fps": 10}},
                      {"name": "b", "registry": "lab.sink"}],
            "edges": [{"source": "a", "target": "b"}],
            "mapping": {"w1": ["a"], "w2": ["b"]}}
    data.update(changes)
    return data


def problems(data, **kwargs):
    with pytest.raises(PipelineError) as caught:
        check_pipeline(data, **kwargs)
    return caught.value.problems


def test_a_good_pipeline_is_built(pack):
    checked = check_pipeline(pipeline())
    assert checked.graph.names() == ["a", "b"] and checked.mapping == {"w1": ["a"], "w2": ["b"]}
    assert checked.warnings == []


def test_option_values_are_checked_against_the_constructor_types(pack):
    data = pipeline()
    data["nodes"][0]["params"] = {"fps": "thirty", "size": [4, "wide"], "label": 3}
    assert problems(data) == [
        ("nodes[0].params.fps", "lab.source's option 'fps' takes float, not 'thirty' (a string)"),
        ("nodes[0].params.size", "lab.source's option 'size' takes Sequence[int], not [4, 'wide'] (a list)"),
        ("nodes[0].params.label", "lab.source's option 'label' takes str | None, not 3 (an integer)"),
    ]
    data["nodes"][0]["params"] = {"fps": 25, "size": [8, 6], "label": None}  # an int is a fine float
    check_pipeline(data)


def test_the_constructors_own_checks_run(pack):
    data = pipeline()
    data["nodes"][0]["params"] = {"fps": -1.0}
    assert problems(data) == [("nodes[0]", "lab.source: Source 'a': fps must be positive, got -1.0")]


def test_a_cycle_is_refused_naming_its_nodes(pack):
    data = pipeline(nodes=[{"name": "a", "registry": "lab.sink"}, {"name": "b", "registry": "lab.sink"}],
                    edges=[{"source": "a", "target": "b"}, {"source": "b", "target": "a"}])
    [(path, message)] = problems(data)
    assert path == "edges" and "the graph has a cycle: a -> b -> a" in message
    data["edges"] = [{"source": "a", "target": "a"}]
    assert problems(data) == [("edges[0]", "an edge from 'a' to itself would be a cycle")]


def test_mapped_workers_must_be_connected_when_that_is_known(pack):
    check_pipeline(pipeline())  # unknown: not checked
    [(path, message)] = problems(pipeline(), connected=["w1"])
    assert path == "mapping.w2" and "Worker 'w2' is not connected (connected: w1)" in message


def test_a_former_option_name_works_with_a_warning(pack):
    data = pipeline()
    data["nodes"][1]["params"] = {"record": "take1"}
    checked = check_pipeline(data)
    assert checked.pipeline.nodes[1].params == {"record_name": "take1"}
    assert checked.graph.node("b").record_name == "take1"
    warning = "lab.sink's option 'record' is now called 'record_name'; rename it (the old name still works for now)"
    assert checked.warnings == [("nodes[1].params", warning)]


def test_the_registry_gives_plain_text_docs_and_option_descriptions(pack):
    infos = {info.name: info for info in registry.available()}
    source, sink = infos["lab.source"], infos["lab.sink"]
    assert source.summary == "Makes frames of a given size, a long summary that goes on to a second line."
    assert "Uses fps and Node and only that." in source.doc
    assert {p.name: p.description for p in source.parameters} == {
        "fps": "frames per second, a description on two lines.", "size": "[width, height].",
        "label": "a name or None."}
    assert [p.name for p in sink.parameters] == ["record_name"] and sink.renamed == {"record": "record_name"}


def test_plain_removes_markup_and_keeps_arithmetic():
    assert docstrings.plain(":meth:`chimerapy.Node.save_audio` and :func:`~a.b.read`, ``x = 1``, *file*, "
                            "2 * 3") == "chimerapy.Node.save_audio and read, x = 1, file, 2 * 3"
    assert docstrings.arguments("Text.\n\nArgs:\n    a, b: both.\n    c: one\n        more.\n\nReturns:\n"
                                "    d: not an option.\n") == {"a": "both.", "b": "both.", "c": "one more."}
