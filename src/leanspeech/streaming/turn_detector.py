"""Turn detection for turn-based protocols (the OpenAI Realtime API's server VAD).

``TurnDetector`` runs Silero VAD over a stream, 32 ms frame by frame with the model's state
carried across chunks (the probabilities are the same as over the whole stream), and says
when a turn starts (``TurnEvent("start", t)``: speech heard from ``t``) and when it stops
(``TurnEvent("stop", t)``: ``silence_s`` of silence ended at ``t``). No model, no I/O of
its own beyond Silero's ONNX session; the adapter decides what a turn means on its wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.errors import InvalidOptionError
from leanspeech.stt.vad import FRAME, SileroStream

FRAME_S = FRAME / SAMPLE_RATE
#: Frames in a row at or above the threshold before a turn starts: one loud frame (a click,
#: a breath) is not speech.
START_FRAMES = 3
#: Below threshold - NEG_OFFSET a frame counts as silence (Silero's own hysteresis).
NEG_OFFSET = 0.15


@dataclass(frozen=True)
class TurnEvent:
    kind: Literal["start", "stop"]
    at_s: float  # stream clock, seconds from the first sample fed


class TurnDetector:
    def __init__(self, threshold: float = 0.5, silence_s: float = 0.5):
        if not 0.0 < threshold < 1.0:
            raise InvalidOptionError(f"the VAD threshold must be between 0 and 1; got {threshold}", "threshold")
        if not 0.0 < silence_s <= 10.0:
            raise InvalidOptionError(f"the silence duration must be 1..10000 ms; got {silence_s * 1000:g}",
                                     "silence_duration_ms")
        self.threshold = threshold
        self.silence_s = silence_s
        self.speaking = False
        self._vad = SileroStream()
        self._frames = 0  # frames seen
        self._run = 0  # loud frames in a row (before a start) or silent frames in a row (after)

    def feed(self, samples: np.ndarray) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        silent_needed = max(1, round(self.silence_s / FRAME_S))
        for p in self._vad.probabilities(samples):
            self._frames += 1
            if not self.speaking:
                self._run = self._run + 1 if p >= self.threshold else 0
                if self._run >= START_FRAMES:
                    self.speaking, self._run = True, 0
                    events.append(TurnEvent("start", (self._frames - START_FRAMES) * FRAME_S))
            else:
                self._run = self._run + 1 if p < self.threshold - NEG_OFFSET else 0
                if self._run >= silent_needed:
                    self.speaking, self._run = False, 0
                    events.append(TurnEvent("stop", self._frames * FRAME_S))
        return events

    def reset(self) -> None:
        """Forget the turn in progress (the buffer was cleared or committed by hand)."""
        self.speaking, self._run = False, 0
