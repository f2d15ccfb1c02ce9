"""Cutting audio into the 30-second windows Whisper decodes, and putting the decoded
windows back together as the file's segments.

With VAD, silence is dropped and speech is merged into windows of at most 30 s; the speech
chunks are kept so that times can be mapped back to the file's timeline. VAD runs through
``vad.speech_timestamps`` (bounded memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from .options import TranscribeOptions
from .result import Segment
from .segments import WindowSegment, restore_times, split_segments

WINDOW_S = 30.0


@dataclass(frozen=True)
class Window:
    """Audio to decode: ``offset`` is its start on the (VAD-collapsed) timeline."""

    audio: np.ndarray
    offset: float
    duration: float

    @classmethod
    def of(cls, audio: np.ndarray, offset: float = 0.0) -> Window:
        return cls(audio, offset, audio.shape[0] / SAMPLE_RATE)


@dataclass(frozen=True)
class Plan:
    """A file cut into windows, and what is needed to put its segments back together."""

    windows: list[Window]
    chunks: list[dict] | None  # VAD speech chunks (samples), None without VAD
    speech_s: float

    def chunk_of(self) -> Callable[[float], int] | None:
        if not self.chunks:
            return None
        from faster_whisper.vad import SpeechTimestampsMap

        return SpeechTimestampsMap(self.chunks, SAMPLE_RATE).get_chunk_index


def plan(audio: np.ndarray, options: TranscribeOptions) -> Plan:
    """Cut ``audio`` (16 kHz mono float32) into windows of at most 30 s."""
    if not options.vad:
        step = int(WINDOW_S * SAMPLE_RATE)
        windows = [Window.of(audio[i : i + step], i / SAMPLE_RATE) for i in range(0, audio.shape[0], step)]
        return Plan(windows, None, sum(w.duration for w in windows))
    from faster_whisper.vad import VadOptions, collect_chunks

    from .vad import speech_timestamps

    params = {"min_silence_duration_ms": 160, **options.vad_parameters, "max_speech_duration_s": WINDOW_S}
    chunks = speech_timestamps(audio, VadOptions(**params))
    if not chunks:
        return Plan([], chunks, 0.0)
    pieces, metadata = collect_chunks(audio, chunks, max_duration=WINDOW_S)
    windows = [Window(p, m["offset"], m["duration"]) for p, m in zip(pieces, metadata, strict=True) if p.shape[0]]
    return Plan(windows, chunks, sum(w.duration for w in windows))


def assemble(per_window: Sequence[Sequence[WindowSegment]], plan_: Plan, options: TranscribeOptions) -> list[Segment]:
    """Window results (in window order) -> the file's segments on its own timeline."""
    chunk_of = plan_.chunk_of()
    segments: list[WindowSegment] = []
    for window_segments in per_window:
        for seg in window_segments:
            segments.extend(split_segments(seg, chunk_of))
    restored = restore_times(segments, plan_.chunks)
    return [s.to_segment(i + 1, with_words=options.word_timestamps) for i, s in enumerate(restored)]
