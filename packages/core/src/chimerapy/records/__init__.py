"""Recording writers: what ``Node.save_*`` writes, and how.

:class:`Recorder` is the only public name. Each ``save_*`` call is validated in the caller and
queued; one writer thread per Recorder writes the files (see :mod:`chimerapy.records.recorder`).
Per record ``name`` in the Recorder's directory:

==========  =====================================================================
kind        files
==========  =====================================================================
video       ``name.mp4`` (H.264; fragmented while recording, ordinary once closed), ``name.timestamps.csv``
audio       ``name.wav`` (PCM int16 or float32), ``name.audio.json``, ``name.blocks.csv``
tabular     ``name.csv`` (first column ``timestamp``)
image       ``name/0.png``, ``name/1.png`` ..., ``name/timestamps.csv``
json        ``name.jsonl`` (``{"timestamp": t, "data": obj}`` per line)
text        ``name.txt``, ``name.timestamps.csv`` (``byte_offset,timestamp``)
array       ``name.000000.npy`` ... (arrays stacked), ``name.arrays.csv`` (``file,row,timestamp``)
==========  =====================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chimerapy.records.recorder import Recorder


def __getattr__(name: str):
    """:class:`Recorder` loads on first use (with PyAV): a reader of one module here, such as
    the archive's MP4 index, should not load every writer."""
    if name == "Recorder":
        from chimerapy.records.recorder import Recorder

        globals()["Recorder"] = Recorder
        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Recorder"]
