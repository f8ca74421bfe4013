"""``ml.ocr``: text in video frames, read with RapidOCR (the optional ``ocr`` extra)."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import cv2
import numpy as np

from .errors import MissingExtraError
from .inputs import Found, check_frame
from .model_node import ModelNode
from .options import check_bool, check_int, check_number

__all__ = ["TextReader"]

_INSTALL = "pip install 'chimerapy-nodes-ml[ocr]'"


class TextReader(ModelNode):
    """Reads text in video frames with RapidOCR (PP-OCR models that the wheel ships).

    Needs the ``ocr`` extra (``pip install 'chimerapy-nodes-ml[ocr]'``): ``rapidocr-onnxruntime``
    carries its detection, orientation and recognition models, so nothing is downloaded.

    Input: the ``frame`` record (uint8 BGR, BGRA or gray) of the first input chunk that has one.
    Edges into this node are latest-only by default: OCR takes from tens of milliseconds to
    seconds per frame, so it works on the newest frame and skips (and counts) the others.

    Output, one chunk per processed frame:

    * ``texts``: a list of ``{"text": str, "box": [x, y, w, h], "score": float, "points":
      [[x, y] * 4]}`` (the axis-aligned box around the text's quadrilateral ``points``, in pixels
      of the input frame), top to bottom;
    * ``detections``: the same as ``{"box", "score", "label": text}``, so ``video.overlay`` draws
      each text where it was read;
    * ``timestamp`` (the frame's capture time), ``frame_index`` when the frame had one, and
      ``processing_fps``, ``skipped``, ``processing_time``, ``latency`` (see
      :mod:`chimerapy_nodes_ml.meter`).

    Args:
        name: the node's name.
        min_score: texts recognised with a lower confidence are left out.
        max_side: frames whose longer side exceeds this are shrunk to it first (faster).
        use_cls: run the orientation classifier (for text turned upside down).
        threads: ONNX Runtime threads for each of the models.
        report_every: seconds between two log lines on rate and skipped frames (0: never).
        record: also write each frame's ``texts`` into the session archive, as a line of
            ``texts.jsonl`` (``{"frame_index", "texts"}``) stamped with the frame's capture time;
            ``False``: send them only.

    Raises:
        MissingExtraError: in ``prep``, when rapidocr-onnxruntime is not installed.
    """

    kind = "step"
    latest_only_inputs = True

    def __init__(
        self,
        name: str = "ocr",
        *,
        min_score: float = 0.5,
        max_side: int = 1280,
        use_cls: bool = False,
        threads: int = 1,
        report_every: float = 5.0,
        record: bool = True,
    ) -> None:
        super().__init__(name)
        what = f"ml.ocr {name!r}"
        self.record = check_bool(record, "record", what)
        self.min_score = check_number(min_score, "min_score", what, high=1.0)
        self.max_side = check_int(max_side, "max_side", what, low=32)
        self.use_cls = bool(use_cls)
        self.take_model_options(what, threads=threads, report_every=report_every)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise MissingExtraError(f"ml.ocr {self.name!r} needs rapidocr-onnxruntime: {_INSTALL}")
        from rapidocr_onnxruntime import RapidOCR

        self._engine = RapidOCR(
            text_score=self.min_score,
            max_side_len=self.max_side,
            use_cls=self.use_cls,
            intra_op_num_threads=self.threads,
            inter_op_num_threads=1,
        )
        _quiet_rapidocr()
        super().prep()

    def keep(self, found: Found, result: dict[str, Any]) -> None:
        self.keep_json("texts", found, result, "texts")

    def release(self) -> None:
        self._engine = None

    # -- reading ---------------------------------------------------------------------------------

    def work(self, found: Found) -> dict[str, Any]:
        """``texts`` and ``detections`` for the frame in ``found`` (see the class docstring)."""
        frame = check_frame(found, f"ml.ocr {self.name!r}")
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        result, _ = self._engine(np.ascontiguousarray(frame))
        texts = []
        for points, text, score in result or []:
            quad = np.asarray(points, np.float64).reshape(4, 2)
            (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
            texts.append(
                {
                    "text": str(text),
                    "box": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(score),
                    "points": quad.tolist(),
                }
            )
        detections = [{"box": t["box"], "score": t["score"], "label": t["text"]} for t in texts]
        return {"texts": texts, "detections": detections}


def _quiet_rapidocr() -> None:
    """RapidOCR installs its own DEBUG stream handler: leave its records to the app's handlers."""
    logger = logging.getLogger("RapidOCR")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.WARNING)
