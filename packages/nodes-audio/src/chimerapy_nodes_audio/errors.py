"""The errors of the audio pack; both children of ChimeraPy's one exception tree::

chimerapy.ChimeraPyError
├── AudioDeviceError(LookupError)   no input device, an unknown or ambiguous device name,
│                                   a device without input channels, PortAudio missing
└── AudioFileError(ValueError)      a WAV file that cannot be read (names the file and why)
"""

from __future__ import annotations

from chimerapy import ChimeraPyError

__all__ = ["AudioDeviceError", "AudioFileError"]


class AudioDeviceError(ChimeraPyError, LookupError):
    """No usable audio input device; the message lists the devices that exist."""


class AudioFileError(ChimeraPyError, ValueError):
    """A WAV file that cannot be played; the message names the file."""
