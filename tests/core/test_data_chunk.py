"""DataChunk as the seed API describes it."""

import pytest

from chimerapy import DataChunk


def test_add_get_update():
    chunk = DataChunk()
    chunk.add("x", 5)
    assert chunk.get("x") == {"value": 5, "content-type": "other", "ownership": []}
    chunk.add("img", b"...", content_type="image")
    assert chunk.get("img")["content-type"] == "image"
    chunk.update("x", {"value": 6, "content-type": "other", "ownership": ["a"]})
    assert chunk.get("x") == {"value": 6, "content-type": "other", "ownership": ["a"]}
    assert chunk.keys() == ["x", "img"] and "x" in chunk and len(chunk) == 2


def test_update_drops_previous_metadata():
    chunk = DataChunk()
    chunk.add("x", 1, "image")
    chunk.update("x", {"value": 2})
    assert chunk.get("x") == {"value": 2, "content-type": "other", "ownership": []}


def test_errors_name_the_problem():
    chunk = DataChunk()
    with pytest.raises(ValueError, match="content_type"):
        chunk.add("x", 1, "video")
    with pytest.raises(ValueError, match="non-empty"):
        chunk.add("", 1)
    with pytest.raises(KeyError, match="'missing'.*'x'|x"):
        chunk.add("x", 1)
        chunk.get("missing")
    with pytest.raises(ValueError, match="value"):
        chunk.update("x", {"content-type": "other"})
