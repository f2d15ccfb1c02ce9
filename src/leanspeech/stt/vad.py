"""Silero VAD with bounded memory.

faster-whisper's ``SileroVADModel`` feeds the ONNX model up to 10,000 frames of 32 ms
(320 s of audio) per call, so its peak grows with the file (README, "Bounded VAD"). The
model carries its LSTM state (h, c) from call to call, so
smaller calls compute the same probabilities; here they are ``FRAMES_PER_CALL`` frames.
``get_speech_timestamps`` is faster-whisper's own; only the model it calls is swapped.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

FRAMES_PER_CALL = 1024  # 32.8 s of audio per ONNX call


@functools.lru_cache(maxsize=1)
def bounded_vad_model():
    from faster_whisper.utils import get_assets_path
    from faster_whisper.vad import SileroVADModel

    class BoundedSileroVAD(SileroVADModel):
        def __call__(self, audio: np.ndarray, num_samples: int = 512, context_size_samples: int = 64):
            frames = audio.reshape(-1, num_samples)
            context = np.roll(frames[..., -context_size_samples:], 1, 0)
            context[0] = 0
            h = np.zeros((1, 1, 128), dtype="float32")
            c = np.zeros((1, 1, 128), dtype="float32")
            outputs = []
            for i in range(0, frames.shape[0], FRAMES_PER_CALL):
                batch = np.concatenate([context[i : i + FRAMES_PER_CALL], frames[i : i + FRAMES_PER_CALL]], 1)
                output, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
                outputs.append(output)
            return np.concatenate(outputs, axis=0)

    return BoundedSileroVAD(os.path.join(get_assets_path(), "silero_vad_v6.onnx"))


_SWAP_LOCK = threading.Lock()


def speech_timestamps(audio: np.ndarray, vad_options) -> list[dict]:
    """faster-whisper's ``get_speech_timestamps`` over the bounded model.

    faster-whisper looks its model up through the module-level ``get_vad_model``; it is
    swapped for the duration of the call (under a lock) rather than copying the function.
    """
    import faster_whisper.vad as fw_vad

    with _SWAP_LOCK:
        original = fw_vad.get_vad_model
        fw_vad.get_vad_model = bounded_vad_model
        try:
            return fw_vad.get_speech_timestamps(audio, vad_options)
        finally:
            fw_vad.get_vad_model = original
