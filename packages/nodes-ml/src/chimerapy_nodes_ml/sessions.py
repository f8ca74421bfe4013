"""ONNX Runtime sessions for the pack's nodes: loading with clear errors, describing inputs.

Sessions run on the CPU with a fixed, small number of threads (each node is its own process, and
the machines that collect data are busy with the collecting).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError

__all__ = ["ORT_DTYPES", "describe_arg", "open_session"]

#: ONNX Runtime's tensor type names -> numpy dtypes.
ORT_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(uint16)": np.uint16,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


def open_session(path: str | Path, *, threads: int, what: str) -> Any:
    """An ``onnxruntime.InferenceSession`` for the model at ``path``: CPU, ``threads`` threads.

    Raises:
        ModelFileError: naming the path, when the file is missing or is not a loadable ONNX model.
    """
    import onnxruntime

    file = Path(path).expanduser().absolute()
    if not file.is_file():
        raise ModelFileError(
            f"{what}: model file {str(file)!r} does not exist on host {socket.gethostname()!r}",
            path=str(file),
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the session's warnings are not the user's concern
    try:
        return onnxruntime.InferenceSession(
            str(file), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped errors for unreadable models
        raise ModelFileError(
            f"{what}: {str(file)!r} cannot be loaded as an ONNX model: {error}", path=str(file)
        ) from error


def describe_arg(arg: Any) -> str:
    """A model input or output as ``'name' float32 [1, 3, 'height', 'width']``."""
    dtype = ORT_DTYPES.get(arg.type)
    shape = ["?" if dim is None else dim for dim in arg.shape]
    return f"{arg.name!r} {np.dtype(dtype).name if dtype is not None else arg.type} {shape}"
