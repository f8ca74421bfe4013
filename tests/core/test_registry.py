"""The node registry: static listing from entry points, broken and clashing packs, loading."""

import sys

import chimerapy as cp
import pytest
from chimerapy import registry
from support.packs import fake_pack

GOOD = '''
import chimerapy as cp

class Base(cp.Node):
    kind = "step"

class Blur(Base):
    """Blurs frames. More text here."""

    def __init__(self, name: str = "blur", *, radius: int = 3, sigma: float | None = None, mode="reflect"):
        super().__init__(name)
        self.radius = radius

class Clock(cp.Node):
    """Says the time."""
    kind = "source"

    def __init__(self, name, period: float):
        super().__init__(name)
'''


@pytest.fixture
def packs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_pack(tmp_path, "lab-good", "1.2.0", "lab_good_nodes", {"lab.blur": "Blur", "lab.clock": "Clock"}, GOOD)
    fake_pack(tmp_path, "lab-broken", "0.3.0", "lab_broken_nodes", {"lab.broken": "Broken"},
              'raise ImportError("this pack needs a driver that is not installed")\nclass Broken: pass\n')
    yield tmp_path
    for name in ("lab_good_nodes", "lab_broken_nodes", "lab_twin_nodes"):
        sys.modules.pop(name, None)


def test_listing_reads_sources_without_importing(packs):
    infos = {info.name: info for info in registry.available()}
    blur, clock = infos["lab.blur"], infos["lab.clock"]
    assert (blur.package, blur.version, blur.kind, blur.summary) == ("lab-good", "1.2.0", "step", "Blurs frames. More text here.")
    assert [(p.name, p.annotation, p.default) for p in blur.parameters] == [
        ("radius", "int", "3"), ("sigma", "float | None", "None"), ("mode", "", "'reflect'")]
    assert clock.kind == "source" and clock.parameters[0].required
    assert infos["lab.broken"].error is None  # listing alone cannot know it is broken
    assert "lab_good_nodes" not in sys.modules and "lab_broken_nodes" not in sys.modules


def test_a_broken_pack_is_reported_and_the_others_work(packs):
    checked = {info.name: registry.check(info) for info in registry.available()}
    assert "needs a driver that is not installed" in checked["lab.broken"].error
    assert checked["lab.blur"].error is None
    node = registry.create("lab.blur", "b1", radius=5)
    assert isinstance(node, cp.Node) and node.name == "b1" and node.radius == 5
    with pytest.raises(cp.RegistryError, match="cannot be loaded.*needs a driver"):
        registry.load("lab.broken")


def test_unknown_names_suggest_close_matches(packs):
    with pytest.raises(cp.RegistryError, match="no node is registered as 'lab.blurr'; did you mean 'lab.blur'"):
        registry.find("lab.blurr")


def test_bad_options_name_the_valid_ones(packs):
    with pytest.raises(cp.RegistryError, match="radius, sigma, mode"):
        registry.create("lab.blur", "b", radiuss=2)


def test_a_name_claimed_by_two_packs_names_both(packs):
    fake_pack(packs, "lab-twin", "2.0.0", "lab_twin_nodes", {"lab.blur": "Blur"}, GOOD)
    claims = [info for info in registry.available() if info.name == "lab.blur"]
    assert len(claims) == 2 and all("lab-good 1.2.0 and lab-twin 2.0.0" in c.error or
                                    "lab-twin 2.0.0 and lab-good 1.2.0" in c.error for c in claims)
    with pytest.raises(cp.RegistryError, match="claimed by"):
        registry.load("lab.blur")


def test_cli_lists_nodes_and_broken_packs(packs):
    from chimerapy.cli.main import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["nodes"])
    assert result.exit_code == 0, result.output
    assert "lab.blur" in result.output and "lab-good 1.2.0" in result.output
    assert "BROKEN: " in result.output and "1 node(s) unusable; the others work." in result.output


def test_new_pack_template_is_valid(tmp_path):
    from chimerapy.pack_template import create_pack

    folder = create_pack("eyetracker", tmp_path / "pack")
    assert (folder / "src" / "chimerapy_nodes_eyetracker" / "counter.py").exists()
    with pytest.raises(FileExistsError):
        create_pack("eyetracker", folder)
    with pytest.raises(ValueError, match="lowercase"):
        create_pack("Eye-Tracker", tmp_path / "other")
