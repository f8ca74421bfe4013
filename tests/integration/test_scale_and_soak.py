"""Scale (20 Worker processes, a 40-node graph) and a 10-minute soak (marked slow)."""

import os
import subprocess
import sys
import time

import psutil
import pytest

import chimerapy as cp
from support.nodes import CountingSource, Doubler
from support.processes import new_marker, processes_marked, wait_until_gone


def start_cp_workers(manager, names, env):
    return [subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", manager.host, "--port",
                              str(manager.port), "--name", name, "--fingerprint", manager.fingerprint],
                             env={**env, "CHIMERAPY_TOKEN": manager.token})
            for name in names]


@pytest.mark.timeout(600)
def test_twenty_workers_commit_a_forty_node_graph_and_shut_down_cleanly(make_manager):
    marker, env = new_marker()
    manager = make_manager()
    names = [f"w{index:02d}" for index in range(20)]
    processes = start_cp_workers(manager, names, env)
    try:
        assert manager.wait_for_workers(names, timeout=300)
        graph, mapping = cp.Graph(), {name: [] for name in names}
        for index, name in enumerate(names):  # each source feeds a node on the next Worker
            source, double = CountingSource(f"src{index}", period=0.02), Doubler(f"double{index}")
            graph.add_edge(source, double)
            mapping[name].append(source.name)
            mapping[names[(index + 1) % len(names)]].append(double.name)
        assert len(graph) == 40
        started = time.monotonic()
        assert manager.commit_graph(graph, mapping)
        commit_seconds = time.monotonic() - started
        manager.start()
        time.sleep(2)
        assert manager.stop()
        for index in range(20):
            edge = manager.final_stats[f"double{index}"]["inputs"][f"src{index}"]
            assert edge["lost"] == 0 and edge["received"] == manager.final_stats[f"src{index}"]["outputs"] > 0
        manager.shutdown()
        for process in processes:
            assert process.wait(60) == 0
        print(f"commit of 40 nodes on 20 Workers: {commit_seconds:.1f} s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert wait_until_gone(marker) == []


class AudioBlocks(cp.Node):
    """16 kHz mono float32 in 1024-sample blocks, paced in real time."""

    def prep(self):
        import numpy as np

        self.np, self.sent, self.start = np, 0, time.monotonic()

    def step(self):
        due = self.start + (self.sent + 1024) / 16000
        time.sleep(max(0.0, due - time.monotonic()))
        chunk = cp.DataChunk()
        chunk.add("samples", self.np.zeros((1024, 1), self.np.float32))
        self.sent += 1024
        return chunk


class Sink(cp.Node):
    def step(self, data_chunks):
        for chunk in data_chunks.values():
            for _, record in chunk.items():
                value = record["value"]
                if hasattr(value, "shape") and value.size:
                    value.reshape(-1)[0]  # touch what arrived, as a user's node would


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_soak_ten_minutes_of_vga_video_and_audio_across_three_workers(make_manager):
    marker, env = new_marker()
    manager = make_manager()
    names = ["cam", "mic", "proc"]
    processes = start_cp_workers(manager, names, env)
    try:
        assert manager.wait_for_workers(names, timeout=120)
        graph = cp.Graph()
        video = VgaSource("video")
        audio = AudioBlocks("audio")
        graph.add_edges([(video, Sink("video_sink")), (audio, Sink("audio_sink"))])
        assert manager.commit_graph(graph, {"cam": ["video"], "mic": ["audio"], "proc": ["video_sink", "audio_sink"]})
        manager.start()
        samples = []
        seconds = float(os.environ.get("CHIMERAPY_SOAK_SECONDS", 600))  # shorter for a dry run
        for _ in range(10):
            time.sleep(seconds / 10)
            samples.append(_rss_of(marker))
        assert manager.stop()
        for sink, source in (("video_sink", "video"), ("audio_sink", "audio")):
            edge = manager.final_stats[sink]["inputs"][source]
            assert edge["lost"] == 0 and edge["out_of_order"] == 0
            assert edge["received"] == manager.final_stats[source]["outputs"]
        assert manager.final_stats["video"]["outputs"] > 30 * seconds * 0.95
        first, last = samples[0], samples[-1]
        for pid, rss in last.items():
            if pid in first:
                assert rss <= first[pid] * 1.10, f"process {pid} grew from {first[pid]} to {rss} bytes"
    finally:
        manager.shutdown()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert wait_until_gone(marker) == []


class VgaSource(cp.Node):
    """640x480x3 frames at 30 fps, paced on an absolute schedule."""

    def prep(self):
        import numpy as np

        self.np, self.index, self.start = np, 0, time.monotonic()

    def step(self):
        due = self.start + self.index / 30
        time.sleep(max(0.0, due - time.monotonic()))
        frame = self.np.full((480, 640, 3), self.index % 256, self.np.uint8)
        chunk = cp.DataChunk()
        chunk.add("frame", frame, "image")
        self.index += 1
        return chunk


def _rss_of(marker):
    sizes = {}
    for process in processes_marked(marker):
        try:
            sizes[process.pid] = process.memory_info().rss
        except psutil.Error:
            pass
    return sizes
