"""``ml.face_detect``: faces in video frames, found with an OpenCV Haar cascade."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ModelFileError
from .inputs import Found, check_frame
from .model_node import ModelNode
from .options import check_bool, check_int, check_number

__all__ = ["FaceDetect", "cascade_path", "to_gray"]


class FaceDetect(ModelNode):
    """Finds faces in video frames with an OpenCV Haar cascade; boxes ready for ``video.overlay``.

    Input: the ``frame`` record (uint8 BGR ``(H, W, 3)``, BGRA or gray) of the first input chunk
    that has one, whatever its producer is called. Edges into this node are latest-only by default
    (``latest_only_inputs``): when detection is slower than the source, each step works on the
    newest frame and the older ones are skipped (and counted), so results never fall behind.

    Output, one chunk per processed frame (also when no face was found):

    * ``detections``: a list of ``{"box": [x, y, w, h], "score": float, "label": "face",
      "neighbors": int}``, box in pixels of the input frame (top-left corner and size), best first.
      Haar cascades give no probability: ``score`` is ``n / (n + min_neighbors)``, where ``n`` is
      the number of overlapping raw cascade hits merged into the box (0.5 at the acceptance
      threshold, towards 1 for clear faces);
    * ``timestamp``: the frame's own capture time (its ``timestamp`` record, else when it was
      sent), and ``frame_index`` when the frame had one: what ``video.overlay`` matches results by;
    * ``processing_fps``, ``skipped``, ``processing_time``, ``latency``: see
      :mod:`chimerapy_nodes_ml.meter` (also logged every ``report_every`` seconds).

    The cascades ship inside the OpenCV 4 wheels (``cv2.data.haarcascades``); nothing is downloaded.

    Args:
        name: the node's name.
        cascade: a cascade file name in ``cv2.data.haarcascades``
            (``haarcascade_frontalface_default.xml``, ``haarcascade_frontalface_alt2.xml``...) or
            the path of a cascade XML file on the Worker.
        scale_factor: the scale step between two detection passes (> 1; smaller is slower and
            finds more).
        min_neighbors: raw hits a box needs to count as a face (higher: fewer false faces).
        min_size: the smallest face side, in pixels of the input frame.
        max_width: frames wider than this are shrunk to it before detection (faster; boxes are
            given in the input frame's pixels all the same); ``None``: never shrink.
        equalize: equalise the gray frame's histogram first (helps in poor light).
        threads: OpenCV worker threads for this node's process.
        report_every: seconds between two log lines on rate and skipped frames (0: never).
        record: also write each frame's ``detections`` into the session archive, as a line of
            ``detections.jsonl`` (``{"frame_index", "detections"}``) stamped with the frame's
            capture time; ``False``: send them only.

    Raises:
        ModelFileError: in ``prep``, naming the path, for a missing or unreadable cascade.
        ModelInputError: in a step, for a frame that is not a uint8 image.
    """

    kind = "step"
    latest_only_inputs = True

    def __init__(
        self,
        name: str = "face_detect",
        *,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        max_width: int | None = 640,
        equalize: bool = True,
        threads: int = 1,
        report_every: float = 5.0,
        record: bool = True,
    ) -> None:
        super().__init__(name)
        what = f"ml.face_detect {name!r}"
        self.record = check_bool(record, "record", what)
        if not isinstance(cascade, (str, os.PathLike)) or not str(cascade).strip():
            raise ValueError(
                f"{what}: cascade must be a cascade file name or path, got {cascade!r}"
            )
        self.cascade = os.fspath(cascade)
        self.scale_factor = check_number(scale_factor, "scale_factor", what, low=1.001, high=4.0)
        self.min_neighbors = check_int(min_neighbors, "min_neighbors", what, low=0)
        self.min_size = check_int(min_size, "min_size", what, low=1)
        self.max_width = check_int(max_width, "max_width", what, low=32, optional=True)
        self.equalize = bool(equalize)
        self.take_model_options(what, threads=threads, report_every=report_every)

    # -- node ------------------------------------------------------------------------------------

    def prep(self) -> None:
        cv2.setNumThreads(self.threads)
        path = cascade_path(self.cascade)
        self._classifier: cv2.CascadeClassifier | None = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise ModelFileError(
                f"ml.face_detect {self.name!r}: {path!r} is not a readable OpenCV cascade file",
                path=path,
            )
        super().prep()
        self.logger.info("detecting faces with %s", path)

    def work(self, found: Found) -> dict[str, Any]:
        return {"detections": self.detect(found)}

    def keep(self, found: Found, result: dict[str, Any]) -> None:
        self.keep_json("detections", found, result, "detections")

    def release(self) -> None:
        self._classifier = None

    # -- detection -------------------------------------------------------------------------------

    def detect(self, found: Found) -> list[dict[str, Any]]:
        """The faces in the frame of ``found``, best first (see the class docstring)."""
        gray = to_gray(check_frame(found, f"ml.face_detect {self.name!r}"))
        scale = 1.0
        if self.max_width is not None and gray.shape[1] > self.max_width:
            scale = self.max_width / gray.shape[1]
            gray = cv2.resize(
                gray,
                (self.max_width, max(1, round(gray.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            )
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        side = max(1, round(self.min_size * scale))
        if self._classifier is None:
            raise RuntimeError("ml.face_detect: detect() after release()")
        boxes, neighbors = self._classifier.detectMultiScale2(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
        )
        faces: list[dict[str, Any]] = []
        for (x, y, w, h), n in zip(
            np.asarray(boxes).reshape(-1, 4), np.asarray(neighbors).reshape(-1), strict=True
        ):
            faces.append(
                {
                    "box": [float(x / scale), float(y / scale), float(w / scale), float(h / scale)],
                    "score": float(n) / (float(n) + max(self.min_neighbors, 1)),
                    "label": "face",
                    "neighbors": int(n),
                }
            )
        faces.sort(key=lambda face: face["score"], reverse=True)
        return faces


def cascade_path(cascade: str) -> str:
    """The file of ``cascade``: a path as given, or a name in ``cv2.data.haarcascades``.

    Raises:
        ModelFileError: naming the path, when the file does not exist.
    """
    given = Path(cascade).expanduser()
    if given.is_file():
        return str(given)
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if given.parent != Path(".") or given.is_absolute() or folder is None:
        hint = (
            ""
            if folder is not None
            else f"; OpenCV {cv2.__version__} ships no Haar cascades (use opencv-python-headless<5)"
        )
        raise ModelFileError(f"cascade file {str(given)!r} does not exist{hint}", path=str(given))
    path = Path(folder) / cascade
    if not path.is_file():
        shipped = sorted(p.name for p in Path(folder).glob("haarcascade_*.xml"))
        raise ModelFileError(
            f"cascade file {str(path)!r} does not exist; OpenCV ships {shipped}", path=str(path)
        )
    return str(path)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A uint8 gray image from ``frame`` (gray, BGR or BGRA; see :func:`check_frame`)."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.shape[2] == 1:
        return np.ascontiguousarray(frame[:, :, 0])
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
