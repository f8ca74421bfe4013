"""ChimeraPy audio node pack: microphone, WAV file, tone, level and recorder nodes.

Registered in the ``chimerapy.nodes`` entry-point group as ``audio.microphone``, ``audio.file``,
``audio.tone``, ``audio.level`` and ``audio.recorder``. The records audio chunks carry are
described in :mod:`chimerapy_nodes_audio.blocks`. ``sounddevice`` (and so PortAudio) is imported
only when a :class:`Microphone` starts.
"""

from chimerapy_nodes_audio.__about__ import __version__
from chimerapy_nodes_audio.blocks import AudioBlock, find_block
from chimerapy_nodes_audio.errors import AudioDeviceError, AudioFileError
from chimerapy_nodes_audio.file import AudioFile
from chimerapy_nodes_audio.level import AudioLevel
from chimerapy_nodes_audio.microphone import Microphone
from chimerapy_nodes_audio.recorder import AudioRecorder
from chimerapy_nodes_audio.tone import Tone
from chimerapy_nodes_audio.wavfile import WavReader

__all__ = [
    "AudioBlock",
    "AudioDeviceError",
    "AudioFile",
    "AudioFileError",
    "AudioLevel",
    "AudioRecorder",
    "Microphone",
    "Tone",
    "WavReader",
    "__version__",
    "find_block",
]
