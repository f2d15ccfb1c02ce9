"""Typed transcription results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] | None = None
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    tokens: tuple[int, ...] = ()
    seek: int = 0
    language: str | None = None  # the language it was decoded in
    speaker: str | None = None  # "channel N" when the channels of a stereo file were split


@dataclass(frozen=True)
class Timings:
    load_s: float
    decode_s: float
    audio_s: float

    @property
    def rtf(self) -> float:
        """Real-time factor: decode seconds per audio second (lower is faster)."""
        return self.decode_s / self.audio_s if self.audio_s > 0 else 0.0


@dataclass(frozen=True)
class TranscriptionInfo:
    duration: float
    duration_after_vad: float
    language: str
    language_probability: float
    task: str
    model: str
    device: str
    precision: str
    requested_precision: str
    precision_reason: str
    batch_size: int  # windows per decode call actually used (0 = sequential)
    timings: Timings
    peak_rss: int = 0


@dataclass(frozen=True)
class Transcription:
    segments: tuple[Segment, ...]
    info: TranscriptionInfo

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def as_dict(self) -> dict:
        data = asdict(self)
        data["text"] = self.text
        data["info"]["timings"]["rtf"] = self.info.timings.rtf
        return data


def segment_from_fw(seg: Any, index: int | None = None) -> Segment:
    """Convert a faster-whisper Segment (or its dict form) to ours."""
    get: Callable[..., Any] = seg.get if isinstance(seg, dict) else lambda k, d=None: getattr(seg, k, d)
    words = get("words")
    return Segment(
        id=index if index is not None else int(get("id", 0)),
        start=float(get("start")),
        end=float(get("end")),
        text=str(get("text")),
        words=None if words is None else tuple(
            Word(float(_g(w, "start")), float(_g(w, "end")), str(_g(w, "word")), float(_g(w, "probability")))
            for w in words
        ),
        avg_logprob=float(get("avg_logprob", 0.0) or 0.0),
        no_speech_prob=float(get("no_speech_prob", 0.0) or 0.0),
        compression_ratio=float(get("compression_ratio", 0.0) or 0.0),
        temperature=float(get("temperature", 0.0) or 0.0),
        tokens=tuple(int(t) for t in (get("tokens") or ())),
        seek=int(get("seek", 0) or 0),
    )


def _g(obj, key):
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


class Segments(Protocol):
    """A transcription given segment by segment (``Transcriber.segments``, ``SegmentStream``):
    iterate for the segments, then read ``info``."""

    def __iter__(self) -> Iterator[Segment]: ...

    @property
    def info(self) -> TranscriptionInfo: ...
