"""faster-whisper's own sequential loop (``batch_size=0`` on CTranslate2): one window at a
time, with temperature fallback and each window conditioned on the text before it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from leanspeech.stt.ct2_engine import CT2Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, segment_from_fw

DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def transcribe_sequential(engine: CT2Engine, samples: np.ndarray, options: TranscribeOptions,
                          progress: Callable[[float], None] | None = None) -> tuple[list[Segment], str, float, float]:
    """Returns (segments, language, language probability, seconds after VAD)."""
    duration = samples.shape[0] / 16000
    temps = tuple(t for t in DEFAULT_TEMPERATURES if t >= options.temperature)
    generator, info = engine.model.transcribe(
        samples,
        beam_size=options.beam_size,
        language=options.language if engine.multilingual else "en",
        task=options.task,
        vad_filter=options.vad,
        vad_parameters=options.vad_parameters or None,
        word_timestamps=options.word_timestamps,
        initial_prompt=options.initial_prompt,
        temperature=temps,
        no_speech_threshold=options.no_speech_threshold,
        log_prob_threshold=options.log_prob_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
        without_timestamps=options.without_timestamps,
        hotwords=options.hotwords,
    )
    segments: list[Segment] = []
    for i, seg in enumerate(generator):
        segments.append(segment_from_fw(seg, i + 1))
        if progress is not None and duration > 0:
            progress(min(1.0, seg.end / duration))
    return segments, info.language, float(info.language_probability), float(info.duration_after_vad)
