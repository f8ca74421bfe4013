"""The demo pipeline: synthetic video and audio on two local Workers, recorded into one archive.

    python examples/demo.py [--seconds 10] [--logdir runs]

Needs no camera, microphone or display: a moving test pattern stands in for a webcam and a
440 Hz tone for a microphone. Prints each node's rate and drops, then the archive's contents.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import chimerapy as cp
from chimerapy_nodes_audio.level import AudioLevel
from chimerapy_nodes_audio.recorder import AudioRecorder
from chimerapy_nodes_audio.tone import Tone
from chimerapy_nodes_video.recorder import VideoRecorder
from chimerapy_nodes_video.test_pattern import TestPattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to record")
    parser.add_argument("--logdir", type=Path, default=Path("runs"), help="where the archive goes")
    args = parser.parse_args()

    manager = cp.Manager(logdir=args.logdir, port=0)
    workers = [cp.Worker(name, port=0) for name in ("camera-laptop", "mic-laptop")]
    try:
        for worker in workers:
            assert worker.connect(manager.host, manager.port), f"{worker.name} could not connect"
        camera, video = TestPattern("camera", width=640, height=480, fps=30), VideoRecorder("video", record_name="camera")
        tone, level, audio = Tone("microphone", samplerate=16000), AudioLevel("level"), AudioRecorder("audio", record="microphone")
        graph = cp.Graph()
        graph.add_edges([(camera, video), (tone, level), (level, audio)])
        manager.commit_graph(graph, {"camera-laptop": ["camera", "video"], "mic-laptop": ["microphone", "level", "audio"]})
        print(f"recording for {args.seconds:.0f} s ...", flush=True)
        manager.start()
        time.sleep(args.seconds)
        complete = manager.stop()
        for name, stats in manager.final_stats.items():
            inputs = ", ".join(f"{p}: {e['received']} received, {e['lost']} lost" for p, e in stats["inputs"].items())
            print(f"  {name:<11} {stats['steps']:>5} steps  {inputs}")
        print(f"archive: {manager.session.path} ({'complete' if complete else 'INCOMPLETE'})")
        for path in sorted(manager.session.path.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(manager.session.path)}  {path.stat().st_size:,} bytes")
        if manager.errors:
            raise SystemExit(f"{len(manager.errors)} node error(s): see {manager.session.path / 'chimerapy.log'}")
    finally:
        manager.shutdown()
        for worker in workers:
            worker.shutdown()


if __name__ == "__main__":
    main()
