"""Silero VAD with bounded memory.

faster-whisper's ``SileroVADModel`` feeds the ONNX model up to 10,000 frames of 32 ms
(320 s of audio) per call, so its peak grows with the file (docs, "Long files and batching"). The
model carries its LSTM state (h, c) from call to call, so
smaller calls compute the same probabilities; here they are ``FRAMES_PER_CALL`` frames.
``get_speech_timestamps`` is faster-whisper's own; only the model it calls is swapped.

For streams: ``SileroStream`` (probabilities frame by frame, any chunk sizes) and
``SpeechTrack`` (a live buffer's speech regions from the probabilities of its frames).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

import numpy as np

FRAMES_PER_CALL = 1024  # 32.8 s of audio per ONNX call
FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame that Silero sees with each frame


_MODEL_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _load_vad_model():
    from faster_whisper.utils import get_assets_path
    from faster_whisper.vad import SileroVADModel

    class BoundedSileroVAD(SileroVADModel):
        def __call__(self, audio: np.ndarray, num_samples: int = FRAME, context_size_samples: int = CONTEXT):
            """Probabilities of ``audio`` (whole frames), ``FRAMES_PER_CALL`` frames per ONNX call."""
            stream, step = SileroStream(self.session), FRAMES_PER_CALL * FRAME
            return np.concatenate([np.zeros(0, np.float32)]
                                  + [stream.probabilities(audio[i : i + step]) for i in range(0, audio.shape[0], step)])

    return BoundedSileroVAD(os.path.join(get_assets_path(), "silero_vad_v6.onnx"))


def bounded_vad_model():
    """The one Silero model of the process, loaded on first use (once, whichever thread asks)."""
    with _MODEL_LOCK:
        return _load_vad_model()


_SWAP_LOCK = threading.Lock()


def speech_timestamps(audio: np.ndarray, vad_options, model: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> list[dict]:
    """faster-whisper's ``get_speech_timestamps`` over the bounded model (or ``model``: a
    callable that gives the probability of each 512-sample frame of the padded audio).

    faster-whisper looks its model up through the module-level ``get_vad_model``; it is
    swapped for the duration of the call (under a lock) rather than copying the function.
    """
    import faster_whisper.vad as fw_vad

    with _SWAP_LOCK:
        original = fw_vad.get_vad_model
        fw_vad.get_vad_model = bounded_vad_model if model is None else (lambda: model)
        try:
            return fw_vad.get_speech_timestamps(audio, vad_options)
        finally:
            fw_vad.get_vad_model = original


class SileroStream:
    """Silero speech probabilities, frame by frame, over a stream fed in any chunk sizes
    (the model's state carried across chunks: the same probabilities as over the whole
    stream at once)."""

    def __init__(self, session=None) -> None:
        self._session = session if session is not None else bounded_vad_model().session
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._left = np.zeros(0, np.float32)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """One probability per whole frame completed by ``samples`` (the rest waits)."""
        audio = np.concatenate([self._left, np.asarray(samples, np.float32)])
        count = audio.shape[0] // FRAME
        self._left = audio[count * FRAME:]
        if count == 0:
            return np.zeros(0, np.float32)
        frames = audio[: count * FRAME].reshape(count, FRAME)
        context = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT:]], axis=0)
        self._context = frames[-1, -CONTEXT:].copy()
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, frames], axis=1), "h": self._h, "c": self._c})
        return np.asarray(out, np.float32).reshape(-1)


class SpeechTrack:
    """Speech regions of a rolling buffer, from probabilities computed once per frame.

    A live session asks for the speech in its buffer every 0.2 s of new audio; running Silero
    over the whole buffer each time costs a pass over the buffer per session, five times a
    second. Here only the new audio goes through the model (``SileroStream``); the regions come
    from faster-whisper's ``get_speech_timestamps`` over the stored probabilities of the
    buffer's frames, counted from the first sample fed."""

    def __init__(self) -> None:
        self._stream: SileroStream | None = None
        self._origin = 0  # stream sample where frame 0 begins
        self._fed = 0  # stream samples given to the model
        self._first = 0  # frame index of _probs[0]
        self._probs = np.zeros(0, np.float32)

    def regions(self, audio: np.ndarray, start: int, vad_options) -> list[tuple[int, int]]:
        """Speech in ``audio`` (the buffer: stream samples ``start`` onward), as (begin, end)
        stream sample indices."""
        total = start + audio.shape[0]
        if self._stream is None or start > self._fed:  # first call, or a gap: a fresh stream
            self._stream, self._origin, self._fed = SileroStream(), start, start
            self._first, self._probs = 0, np.zeros(0, np.float32)
        if total > self._fed:
            new = self._stream.probabilities(audio[self._fed - start :])
            self._probs = np.concatenate([self._probs, new])
            self._fed = total
        first = -(-(start - self._origin) // FRAME)  # the buffer's first whole frame
        if first > self._first:  # frames cut from the buffer are forgotten
            self._probs, self._first = self._probs[first - self._first :], first
        begin = self._origin + self._first * FRAME
        if total <= begin:
            return []
        # faster-whisper pads the audio to whole frames (a last partial frame, or one more):
        # that frame's probability is not known yet, so it counts as silence
        probs = np.concatenate([self._probs, np.zeros(1, np.float32)])
        chunks = speech_timestamps(np.zeros(total - begin, np.float32), vad_options,
                                   model=lambda padded: probs[: padded.shape[0] // FRAME])
        return [(begin + c["start"], begin + c["end"]) for c in chunks]
