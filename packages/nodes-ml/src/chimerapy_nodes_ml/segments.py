"""Speech segments from a stream of per-window speech probabilities (pure: times are passed in).

The rules are Silero's own (``get_speech_timestamps``), made causal:

* speech begins at the first window whose probability reaches ``threshold``; it counts once it
  has lasted ``min_speech`` seconds without falling below ``neg_threshold`` (shorter blips are
  dropped), and its ``start`` event is then emitted with the time speech began, less ``pad``;
* speech ends at the first window below ``neg_threshold`` that starts a quiet stretch of at least
  ``min_silence`` seconds (a window reaching ``threshold`` again cancels it); the ``end`` event
  is emitted once the stretch is long enough, with the time the quiet began, plus ``pad``.

So events arrive ``min_speech`` or ``min_silence`` after the moment they name: their ``time`` is
when speech started or ended, not when that became known.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SpeechSegmenter"]


class SpeechSegmenter:
    """Turns ``(time, duration, probability)`` windows into ``start`` and ``end`` events.

    Args:
        threshold: probability at which speech begins.
        neg_threshold: probability below which speech may end (default ``threshold - 0.15``).
        min_speech: the shortest speech, in seconds, that produces events.
        min_silence: the quiet, in seconds, that ends speech.
        pad: seconds added before a start and after an end.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech: float = 0.25,
        min_silence: float = 0.1,
        pad: float = 0.03,
    ) -> None:
        self.threshold = threshold
        self.neg_threshold = max(0.0, threshold - 0.15) if neg_threshold is None else neg_threshold
        self.min_speech = min_speech
        self.min_silence = min_silence
        self.pad = pad
        self._onset: float | None = None  # when the current (maybe unconfirmed) speech began
        self._quiet_since: float | None = None  # when the current quiet stretch inside speech began
        self._confirmed = False
        self._last_end = float("-inf")

    @property
    def speaking(self) -> bool:
        """True between an emitted ``start`` and its ``end``."""
        return self._confirmed

    def update(self, time: float, duration: float, probability: float) -> list[dict[str, Any]]:
        """Take the window ``[time, time + duration)``; return the events it completes."""
        events: list[dict[str, Any]] = []
        end = time + duration
        if self._onset is None:
            if probability >= self.threshold:
                self._onset, self._quiet_since = time, None
                self._confirm(end, events)
            return events
        if probability >= self.threshold:
            self._quiet_since = None
        elif probability < self.neg_threshold and self._quiet_since is None:
            self._quiet_since = time
        if self._quiet_since is not None and not self._confirmed:
            self._onset = self._quiet_since = None  # a blip shorter than min_speech: dropped
            return events
        if self._quiet_since is not None and end - self._quiet_since >= self.min_silence:
            self._last_end = self._quiet_since + self.pad
            events.append({"type": "end", "time": self._last_end})
            self._onset = self._quiet_since = None
            self._confirmed = False
            return events
        self._confirm(end, events)
        return events

    def _confirm(self, end: float, events: list[dict[str, Any]]) -> None:
        if not self._confirmed and self._onset is not None and end - self._onset >= self.min_speech:
            self._confirmed = True
            events.append({"type": "start", "time": max(self._onset - self.pad, self._last_end)})
