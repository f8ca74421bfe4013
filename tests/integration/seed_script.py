"""A pipeline written only against the seed's api-reference.txt.

Usage: python seed_script.py OUTDIR SECONDS
Starts a Manager, two `cp-worker` processes ("alpha" and "beta"), runs Source -> Step -> Sink
across them, and writes what each end counted to OUTDIR/source.json and OUTDIR/sink.json.
"""

import json
import os
import subprocess
import sys
import time

import chimerapy as cp


class Source(cp.Node):
    def __init__(self, name, outdir):
        super().__init__(name)
        self.outdir = outdir

    def prep(self):
        self.sent = 0

    def step(self):
        time.sleep(0.005)
        chunk = cp.DataChunk()
        chunk.add("count", self.sent)
        self.sent += 1
        return chunk

    def teardown(self):
        with open(os.path.join(self.outdir, "source.json"), "w") as file:
            json.dump({"sent": self.sent}, file)


class Step(cp.Node):
    def step(self, data_chunks):
        chunk = cp.DataChunk()
        chunk.add("count", data_chunks["source"].get("count")["value"])
        return chunk


class Sink(cp.Node):
    def __init__(self, name, outdir):
        super().__init__(name)
        self.outdir = outdir

    def prep(self):
        self.seen = []

    def step(self, data_chunks):
        self.seen.append(data_chunks["step"].get("count")["value"])

    def teardown(self):
        with open(os.path.join(self.outdir, "sink.json"), "w") as file:
            json.dump({"seen": self.seen}, file)


if __name__ == "__main__":
    outdir, seconds = sys.argv[1], float(sys.argv[2])
    manager = cp.Manager(logdir=os.path.join(outdir, "runs"), port=0)
    workers = [
        subprocess.Popen([sys.executable, "-m", "chimerapy.cli.worker", "--ip", "127.0.0.1",
                          "--port", str(manager.port), "--name", name])
        for name in ("alpha", "beta")
    ]
    source, step, sink = Source("source", outdir), Step("step"), Sink("sink", outdir)
    graph = cp.Graph()
    graph.add_nodes([source, step, sink])
    graph.add_edge(source, step)
    graph.add_edge(step, sink)
    mapping = {"alpha": ["source"], "beta": ["step", "sink"]}
    deadline = time.time() + 60
    while True:  # the Workers join when their processes are up
        try:
            committed = manager.commit_graph(graph, mapping)
            break
        except cp.MappingError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    assert committed
    manager.start()
    time.sleep(seconds)
    manager.stop()
    manager.shutdown()
    for worker in workers:
        worker.wait(timeout=30)
    print("codes", [worker.returncode for worker in workers])
