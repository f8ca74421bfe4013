"""Video sources paint or decode each frame straight into the shared memory their consumers read
(``Node.output_buffer``): the frames are the same as painted into a new array, and none is copied."""

import cv2
import numpy as np
import pytest
import zmq
from chimerapy.net.transport import Consumer, Subscriber
from chimerapy.node.runtime import NodeRuntime
from chimerapy_nodes_video import TestPattern, VideoFile
from chimerapy_nodes_video.test_pattern import PatternPainter

pytestmark = pytest.mark.timeout(60)


def run_source(node, tmp_path, steps):
    """Run ``steps`` steps of ``node`` with one consumer on this host; returns (chunks as
    (frame copy, records), frames copied into a slot, frames sent from an output buffer)."""
    context = zmq.Context()
    runtime = NodeRuntime(node, context=context, host="127.0.0.1", directory=tmp_path, consumers=[Consumer("sink")])
    subscriber = Subscriber(context, "sink")
    subscriber.connect(node.name, runtime.publisher.addresses["sink"])
    pool = runtime.publisher._pool
    copied, lent = [], []  # frames copied into a slot, output buffers that are slots

    def counted(method, into):
        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            if result is not None:
                into.append(result)
            return result
        return call

    pool.put, pool.lend = counted(pool.put, copied), counted(pool.lend, lent)
    received = []
    try:
        assert runtime.publisher.wait_for_subscribers(10) == set()
        assert runtime.prep()
        runtime.mode = "run"
        for _ in range(steps):
            runtime.tick()
            for chunk in subscriber.receive(2.0):  # checked and let go of at once
                records = {name: record["value"] for name, record in chunk.items() if name != "frame"}
                received.append((chunk.get("frame")["value"].copy(), records))
    finally:
        runtime.close()
        subscriber.close()
        context.term()
    return received, copied, lent


def test_the_test_pattern_paints_in_place_the_frames_it_would_paint_into_a_new_array(tmp_path):
    received, copied, lent = run_source(TestPattern("tp", width=640, height=480, fps=500), tmp_path, 20)
    assert len(received) == 20 and copied == [] and len(lent) == 20
    painter = PatternPainter(640, 480)
    for frame, records in received:
        expected = painter.paint(records["frame_index"], records["timestamp"])
        assert np.array_equal(frame, expected), records["frame_index"]


def test_a_video_file_is_decoded_in_place_frame_for_frame(tmp_path, make_clip):
    path = make_clip(frames=12, fps=25, size=(320, 240))
    received, copied, lent = run_source(VideoFile("file", path=str(path), fps=500), tmp_path / "run", 14)
    assert [records["file_frame"] for _, records in received] == list(range(12))
    assert len(copied) == 1  # the first frame, decoded in prep; the others in place
    assert len(lent) >= 11
    capture = cv2.VideoCapture(str(path))
    for frame, _ in received:
        ok, expected = capture.read()
        assert ok and np.array_equal(frame, expected)
    capture.release()
