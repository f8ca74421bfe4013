"""``ml.onnx``: any ONNX model, run with ONNX Runtime on the frames or arrays of a stream."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .errors import ModelError, ModelInputError
from .inputs import Found
from .model_node import ModelNode
from .options import check_bool, check_number
from .sessions import ORT_DTYPES, describe_arg, open_session

__all__ = ["OnnxModel", "archive_name", "prepare_input"]

COLORS = ("rgb", "bgr", "gray")
LAYOUTS = ("nchw", "nhwc")

#: Records the node adds to every output (a model output with one of these names is renamed).
RESERVED = ("timestamp", "frame_index", "processing_fps", "skipped", "processing_time", "latency")


class OnnxModel(ModelNode):
    """Runs an ONNX model with ONNX Runtime on image or array inputs; outputs the model's outputs.

    Input: the record ``input_record`` (``"frame"`` by default) of the first input chunk that has one,
    fed to the model's input ``input_name``. An image (a uint8 array of shape ``(H, W)`` or
    ``(H, W, 3)`` BGR, as video sources send) is prepared the usual way: resized to ``size``,
    converted to ``color``, scaled by ``scale`` (default ``1/255``), normalised with ``mean`` and
    ``std`` per channel, laid out as ``layout`` and given a batch axis. Any other array is scaled
    and normalised only when ``scale``/``mean``/``std`` are given and gets a batch axis when the
    model's input has one more dimension. Then the data is cast to the input's dtype (floats never
    silently to integers) and its shape checked against the model's: a mismatch raises
    :class:`ModelInputError` naming the model's input and what arrived.

    Output, one chunk per processed input: each model output by its output name (numpy arrays;
    an output named like one of the records below gets the prefix ``output:``), ``timestamp`` (the
    input's capture time), ``frame_index`` when the input had one, and ``processing_fps``,
    ``skipped``, ``processing_time``, ``latency`` (see :mod:`chimerapy_nodes_ml.meter`). Edges into
    this node are latest-only by default: a model slower than its source works on the newest input.

    Args:
        name: the node's name.
        path: the ``.onnx`` file, on the Worker that runs the node.
        input_record: the input record to feed.
        input_name: the model input to feed; ``None``: the model's only input.
        size: ``[width, height]`` to resize images to; ``None``: as they come.
        color: ``"rgb"``, ``"bgr"`` or ``"gray"``: the channel order the model expects (images).
        layout: ``"nchw"`` or ``"nhwc"``: where the model expects the channel axis (images).
        scale: factor applied first (``None``: ``1/255`` for images, nothing for arrays).
        mean: subtracted per channel after scaling (one value, or one per channel).
        std: divided by per channel after subtracting the mean.
        threads: ONNX Runtime threads.
        report_every: seconds between two log lines on rate and skipped inputs (0: never).
        record: also write each model output into the session archive, as an array record of
            the same name (``<output>.000000.npy`` stacks and ``<output>.arrays.csv``, see
            :mod:`chimerapy.records.array`; sequence and map outputs as ``<output>.jsonl``;
            characters a file name cannot hold become ``_``), each stamped with the capture time
            of its input; ``False``: send them only.

    Raises:
        ValueError: when the node is created without a path or with invalid options.
        ModelFileError: in ``prep``, naming the path, when the model file is missing or unreadable.
        ModelInputError: in ``prep`` for an ``input_name`` the model lacks (or a model that takes
            several inputs), in a step for data that does not fit the input.
    """

    kind = "step"
    latest_only_inputs = True

    def __init__(
        self,
        name: str = "onnx",
        *,
        path: str = "",
        input_record: str = "frame",
        input_name: str | None = None,
        size: Sequence[int] | None = None,
        color: str = "rgb",
        layout: str = "nchw",
        scale: float | None = None,
        mean: Sequence[float] | float | None = None,
        std: Sequence[float] | float | None = None,
        threads: int = 1,
        report_every: float = 5.0,
        record: bool = True,
    ) -> None:
        super().__init__(name)
        what = f"ml.onnx {name!r}"
        if not path or not str(path).strip():
            raise ValueError(f"{what}: no model given; pass path='/path/to/model.onnx'")
        hint = f" (the record to feed is input_record={record!r})" if isinstance(record, str) else ""
        self.record = check_bool(record, "record", what, hint=hint)
        if not isinstance(input_record, str) or not input_record:
            raise ValueError(f"{what}: input_record must be a record name, got {input_record!r}")
        if color not in COLORS or layout not in LAYOUTS:
            raise ValueError(
                f"{what}: color must be one of {COLORS} and layout one of {LAYOUTS}, "
                f"got {color!r} and {layout!r}"
            )
        if size is not None and (
            len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise ValueError(f"{what}: size must be [width, height] in pixels, got {size!r}")
        self.path = os.fspath(path)
        self.input_record = input_record
        self.input_kind = f"arrays in {input_record!r} records (set input_record= to the one to feed)"
        self.input_name = input_name
        self.size = None if size is None else [int(v) for v in size]
        self.color = color
        self.layout = layout
        self.scale = check_number(scale, "scale", what, low=-np.inf, optional=True)
        self.mean = _floats(mean, "mean", what)
        self.std = _floats(std, "std", what)
        if self.std is not None and not all(self.std):
            raise ValueError(f"{what}: std must not hold a zero, got {std!r}")
        self.take_model_options(what, threads=threads, report_every=report_every)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        what = f"ml.onnx {self.name!r}"
        self._session = open_session(self.path, threads=self.threads, what=what)
        inputs = self._session.get_inputs()
        names = [arg.name for arg in inputs]
        wanted = (
            self.input_name
            if self.input_name is not None
            else (names[0] if len(names) == 1 else None)
        )
        if wanted not in names or len(names) > 1:
            described = ", ".join(describe_arg(arg) for arg in inputs)
            asked = (
                f"input_name={self.input_name!r}" if self.input_name is not None else "one input"
            )
            raise ModelInputError(
                f"{what}: model {self.path!r} takes {len(names)} input(s): {described}; "
                f"ml.onnx feeds {asked}",
                expected=described,
                received=asked,
            )
        self._input = inputs[names.index(wanted)]
        self._outputs = {
            arg.name: (f"output:{arg.name}" if arg.name in RESERVED else arg.name)
            for arg in self._session.get_outputs()
        }
        for output, record in self._outputs.items():
            if output != record:
                self.logger.warning(
                    "model output %r is sent as record %r (%r is a record this node adds)",
                    output,
                    record,
                    output,
                )
        self._archive_names: dict[str, str] = {}
        for record in self._outputs.values():
            name = archive_name(record)
            while name in self._archive_names.values():  # two outputs alike once cleaned
                name += "_"
            self._archive_names[record] = name
        super().prep()
        self.logger.info("running %s: input %s", self.path, describe_arg(self._input))

    def keep(self, found: Found, result: dict[str, Any]) -> None:
        for output, name in self._archive_names.items():
            value = result[output]
            if isinstance(value, np.ndarray):
                self.save_array(name, value, timestamp=found.timestamp)
            else:  # sequence and map outputs (e.g. a classifier's list of label -> probability)
                self.save_json(name, value, timestamp=found.timestamp)

    def release(self) -> None:
        self._session = None

    # -- inference -------------------------------------------------------------------------------

    def work(self, found: Found) -> dict[str, Any]:
        """The model's outputs (record name -> value) for the input in ``found``."""
        x = prepare_input(
            found,
            self._input,
            size=self.size,
            color=self.color,
            layout=self.layout,
            scale=self.scale,
            mean=self.mean,
            std=self.std,
            what=f"ml.onnx {self.name!r}",
        )
        try:
            results = self._session.run(None, {self._input.name: x})
        except (
            Exception
        ) as error:  # ONNX Runtime's own errors: a model that fails on valid-looking data
            raise ModelError(
                f"ml.onnx {self.name!r}: model {self.path!r} failed on {x.dtype} {x.shape} "
                f"(from {found.record!r} of {found.producer!r}): {error}"
            ) from error
        return dict(zip(self._outputs.values(), results, strict=True))


def prepare_input(
    found: Found,
    model_input: Any,
    *,
    size: Sequence[int] | None = None,
    color: str = "rgb",
    layout: str = "nchw",
    scale: float | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    what: str = "ml.onnx",
) -> np.ndarray:
    """The array to feed ``model_input`` (an ONNX Runtime ``NodeArg``) from the record in ``found``.

    See :class:`OnnxModel` for the steps. Raises :class:`ModelInputError` naming the model's
    input and what arrived when the result does not fit it.
    """
    value = np.asarray(found.value)
    arrived = f"{value.dtype} {value.shape} from record {found.record!r} of {found.producer!r}"
    image = _is_image(found, value)
    x = _prepare_image(value, size, color, layout) if image else value
    if image or scale is not None:
        x = x.astype(np.float32) * np.float32(1 / 255 if scale is None else scale)
    x = _normalise(x, mean, std, channel_axis=0 if image and layout == "nchw" else -1)
    shape = list(model_input.shape)
    if len(shape) == x.ndim + 1:  # the model takes a batch: this is a batch of one
        x = x[None, ...]
    dtype = ORT_DTYPES.get(model_input.type)
    expected = describe_arg(model_input)
    received = f"{x.dtype} {x.shape} (prepared from {arrived}" + (
        f" as a {layout.upper()} {color} image)" if image else ")"
    )
    hint = ""
    if image and len(shape) == 4 and x.ndim == 4:
        now = list(size) if size else "the frame size"
        hint = f"; check size= (now {now}) and layout= (now {layout!r})"
    if (
        dtype is None
        or (np.issubdtype(dtype, np.integer) and not np.issubdtype(x.dtype, np.integer))
        or (dtype is np.bool_ and x.dtype != np.bool_)
    ):
        raise ModelInputError(
            f"{what}: the model's input {expected} cannot take {received}",
            expected=expected,
            received=received,
        )
    fixed = (
        [(d, n) for d, n in zip(shape, x.shape, strict=True) if isinstance(d, int)]
        if len(shape) == x.ndim
        else []
    )
    if len(shape) != x.ndim or any(d != n for d, n in fixed):
        raise ModelInputError(
            f"{what}: the model expects input {expected}, got {received}{hint}",
            expected=expected,
            received=received,
        )
    return np.ascontiguousarray(x, dtype=dtype)


def _is_image(found: Found, value: np.ndarray) -> bool:
    declared = found.chunk.get(found.record)["content-type"] == "image" or found.record == "frame"
    return (
        declared
        and value.dtype == np.uint8
        and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (1, 3, 4)))
    )


def _prepare_image(
    frame: np.ndarray, size: Sequence[int] | None, color: str, layout: str
) -> np.ndarray:
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if size is not None and (frame.shape[1], frame.shape[0]) != tuple(size):
        shrink = size[0] < frame.shape[1]
        frame = cv2.resize(
            frame, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if color == "gray":
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        frame = frame[:, :, None]
    elif frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if color == "rgb":
        frame = frame[:, :, ::-1]
    return frame.transpose(2, 0, 1) if layout == "nchw" else frame


def _normalise(
    x: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None, channel_axis: int
) -> np.ndarray:
    if mean is None and std is None:
        return x
    shape = [1] * x.ndim
    x = x.astype(np.float32, copy=False)
    for values, apply in ((mean, np.subtract), (std, np.divide)):
        if values is not None:
            per_channel = np.asarray(values, np.float32)
            shape[channel_axis] = max(1, len(per_channel))
            x = apply(x, per_channel.reshape(shape))
    return x


def _floats(values: Sequence[float] | float | None, option: str, what: str) -> list[float] | None:
    if values is None:
        return None
    items = [values] if isinstance(values, (int, float)) else list(values)
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{what}: {option} must be a number or a list of numbers, got {values!r}")
    return [float(v) for v in items]


def archive_name(output: str) -> str:
    """The record name an output is archived under: characters file names cannot hold become ``_``."""
    return re.sub(r"[^\w.-]", "_", output).strip(". ") or "output"
