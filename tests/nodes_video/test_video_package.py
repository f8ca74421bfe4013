"""The pack as the core's registry and the Workers see it: entry points, node conventions, public API."""

import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
from support.packs import assert_declared, assert_node_conventions

import chimerapy_nodes_video
from chimerapy import registry

pytestmark = pytest.mark.timeout(60)

NODES = {
    "video.camera": ("chimerapy_nodes_video.camera:Camera", "source"),
    "video.file": ("chimerapy_nodes_video.file:VideoFile", "source"),
    "video.test_pattern": ("chimerapy_nodes_video.test_pattern:TestPattern", "source"),
    "video.screen": ("chimerapy_nodes_video.screen:Screen", "source"),
    "video.recorder": ("chimerapy_nodes_video.recorder:VideoRecorder", "sink"),
    "video.overlay": ("chimerapy_nodes_video.overlay:Overlay", "step"),
}
REQUIRED = {"video.file": {"path": "clip.mp4"}}


def test_every_node_has_an_entry_point():
    assert_declared("chimerapy-nodes-video", "chimerapy_nodes_video", {name: target for name, (target, _) in NODES.items()})


def test_the_registry_lists_every_node_of_the_pack_without_error():
    listed = {info.name: info for info in registry.available() if info.name.startswith("video.")}
    assert set(listed) == set(NODES)
    for name, (target, kind) in NODES.items():
        info = listed[name]
        assert info.error is None, info.error
        assert (info.target, info.kind, info.package) == (target, kind, "chimerapy-nodes-video")
        assert info.summary and info.summary.endswith(".") and "\n" not in info.summary
        assert info.version == chimerapy_nodes_video.__version__
        for parameter in info.parameters:  # every option typed and defaulted, so listings can show it
            assert parameter.annotation and not parameter.required, (name, parameter)


@pytest.mark.parametrize("name", sorted(NODES))
def test_each_node_follows_the_pack_conventions(name):
    cls = registry.load(name)
    assert_node_conventions(cls, NODES[name][1], **REQUIRED.get(name, {}))
    # what a Worker gets: the node shipped with cloudpickle, intact
    copy = cloudpickle.loads(cloudpickle.dumps(cls(**REQUIRED.get(name, {}))))
    assert type(copy).__name__ == cls.__name__


def test_registry_create_builds_a_node_with_options():
    node = registry.create("video.test_pattern", "tp", width=320, height=240, fps=15)
    assert (node.name, node.width, node.height, node.fps) == ("tp", 320, 240, 15.0)


def test_the_public_api_is_pinned():
    assert chimerapy_nodes_video.__all__ == [
        "Camera", "Overlay", "Screen", "TestPattern", "VideoFile", "VideoRecorder", "VideoSourceError",
        "__version__", "draw_detections", "read_frame_code",
    ]


def test_importing_the_pack_loads_no_screen_capture_library():
    code = "import sys, chimerapy_nodes_video; print('mss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_opencv_is_a_4x_build_with_the_haar_cascades():
    import cv2

    assert cv2.__version__.startswith("4."), "OpenCV 5 dropped the Haar cascades: pip install 'opencv-python-headless<5'"
    assert (Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml").is_file()
