"""Helpers for the audio pack's tests: make WAV files, find and read recordings, spectra."""

from __future__ import annotations

import csv
import json
import time
import wave
from pathlib import Path

import numpy as np

import chimerapy as cp
from chimerapy_nodes_audio import WavReader


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write int16 ``samples`` (n, channels) as a PCM WAV with the standard library."""
    samples = np.asarray(samples, dtype=np.int16).reshape(len(samples), -1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def sine(frequency: float, rate: int, frames: int, amplitude: float = 0.5) -> np.ndarray:
    """A float64 sine of ``frames`` samples."""
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(frames) / rate)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    """The frequency of the largest bin of the (Hann-windowed) spectrum of channel 0."""
    mono = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)[:, 0]
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1.0 / rate)[int(np.argmax(spectrum))])


class Recording:
    """An audio record on disk: its samples, ``.audio.json`` and ``.blocks.csv``."""

    def __init__(self, wav: Path) -> None:
        self.wav = wav
        stem = wav.name[: -len(".wav")]
        self.meta = json.loads((wav.parent / f"{stem}.audio.json").read_text())
        with open(wav.parent / f"{stem}.blocks.csv", newline="") as file:
            self.blocks = [
                (int(row["sample_index"]), float(row["timestamp"])) for row in csv.DictReader(file)
            ]
        with WavReader(wav, dtype="float32") as reader:
            self.rate, self.channels = reader.rate, reader.channels
            self.samples = reader.read(reader.frames)

    @property
    def frames(self) -> int:
        return len(self.samples)


def find_recording(node: str, record: str, *folders: Path) -> Recording:
    """The recording ``<node>/<record>.wav`` under the first of ``folders`` that has it.

    Recordings are written in the Worker's temporary folder; ``Manager.stop()`` collects them
    into the session folder under the Manager's logdir.
    """
    for folder in folders:
        found = sorted(Path(folder).glob(f"**/{node}/{record}.wav"))
        if found:
            return Recording(found[-1])
    raise AssertionError(f"no recording {node}/{record}.wav under {[str(f) for f in folders]}")


def run_for(
    manager: cp.Manager, graph: cp.Graph, mapping: dict, seconds: float
) -> tuple[float, float, float]:
    """Commit, start, wait ``seconds``, stop (collecting the recordings).

    Returns the wall times at which ``start()`` was called and returned, and ``stop()`` was called.
    """
    assert manager.commit_graph(graph, mapping)
    starting = time.time()
    assert manager.start()
    started = time.time()
    time.sleep(seconds)
    stopping = time.time()
    assert manager.stop()
    return starting, started, stopping
