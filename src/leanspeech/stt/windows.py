"""Cutting audio into the 30-second windows Whisper decodes, and putting the decoded
windows back together as the file's segments.

With VAD, silence is dropped and speech is merged into windows of at most 30 s; the speech
chunks are kept so that times can be mapped back to the file's timeline. VAD runs through
``vad.speech_timestamps`` (bounded memory).

With ``multilingual``, the language of every speech chunk is detected first (on the chunk's
own frames, without padding them to 30 s: a fraction of a window's encode) and chunks are
merged only with neighbours of the same language, so that a file that switches languages
at a pause is decoded in each. A chunk too short to tell (a "Good morning." before a pause)
is heard together with the speech after it, which is most often its own sentence's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment
from leanspeech.stt.segments import WindowSegment, restore_times, split_segments

WINDOW_S = 30.0
#: Speech heard to detect a chunk's language: the chunk, and the chunks after it (else
#: before it) until this much.
DETECT_S = 4.0

_NO_AUDIO = np.zeros(0, np.float32)

#: detect(audio) -> (language, probability) of a piece of speech
DetectLanguage = Callable[[np.ndarray], tuple[str, float]]


@dataclass(frozen=True)
class Window:
    """Audio to decode: ``offset`` is its start on the (VAD-collapsed) timeline;
    ``language`` is set when it was detected while planning (``multilingual``)."""

    audio: np.ndarray
    offset: float
    duration: float
    language: str | None = None
    language_probability: float = 1.0
    #: where each VAD speech chunk begins in ``audio`` (samples): where a window may be cut
    #: when its chunks turn out to be in different languages (``split_by_language``)
    chunk_starts: tuple[int, ...] = ()

    @classmethod
    def of(cls, audio: np.ndarray, offset: float = 0.0) -> Window:
        return cls(audio, offset, audio.shape[0] / SAMPLE_RATE)

    def times_only(self) -> Window:
        """This window without its samples: what waits for its decode needs its times only."""
        return replace(self, audio=_NO_AUDIO)


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


def plan(audio: np.ndarray, options: TranscribeOptions, detect: DetectLanguage | None = None) -> Plan:
    """Cut ``audio`` (16 kHz mono float32) into windows of at most 30 s. ``detect``: how to
    tell a chunk's language, used with ``options.multilingual`` (and VAD)."""
    if not options.vad:
        return plan_fixed(audio)
    return plan_chunks(audio, speech_chunks(audio, options), options, detect)


def plan_fixed(audio: np.ndarray) -> Plan:
    """Without VAD: consecutive 30 s windows."""
    step = int(WINDOW_S * SAMPLE_RATE)
    windows = [Window.of(audio[i : i + step], i / SAMPLE_RATE) for i in range(0, audio.shape[0], step)]
    return Plan(windows, None, sum(w.duration for w in windows))


def speech_chunks(audio: np.ndarray, options: TranscribeOptions) -> list[dict]:
    """VAD's speech chunks (``start``/``end`` in samples), none longer than a window."""
    from faster_whisper.vad import VadOptions

    from leanspeech.stt.vad import speech_timestamps

    params = {"min_silence_duration_ms": 160, **options.vad_parameters, "max_speech_duration_s": WINDOW_S}
    return speech_timestamps(audio, VadOptions(**params))


def plan_chunks(audio: np.ndarray, chunks: list[dict], options: TranscribeOptions,
                detect: DetectLanguage | None = None) -> Plan:
    """Windows of the speech ``chunks`` of ``audio`` (from ``speech_chunks``)."""
    if not chunks:
        return Plan([], chunks, 0.0)
    languages = None
    if options.multilingual and options.language is None and detect is not None:
        languages = _chunk_languages(audio, chunks, detect)
    windows = _collect(audio, chunks, languages)
    return Plan(windows, chunks, sum(w.duration for w in windows))


def _chunk_languages(audio: np.ndarray, chunks: list[dict], detect: DetectLanguage) -> list[tuple[str, float]]:
    need = int(DETECT_S * SAMPLE_RATE)
    out: list[tuple[str, float]] = []
    for i, chunk in enumerate(chunks):
        pieces = [audio[chunk["start"] : chunk["end"]]]
        length, after, before = pieces[0].shape[0], i + 1, i - 1
        while length < need and (after < len(chunks) or before >= 0):
            if after < len(chunks):
                piece = audio[chunks[after]["start"] : chunks[after]["end"]]
                pieces.append(piece)
                after += 1
            else:
                piece = audio[chunks[before]["start"] : chunks[before]["end"]]
                pieces.insert(0, piece)
                before -= 1
            length += piece.shape[0]
        out.append(detect(np.concatenate(pieces)[: int(WINDOW_S * SAMPLE_RATE)]))
    return out


def chunk_spans(window: Window) -> list[tuple[int, int]]:
    """The speech chunks of ``window`` as (start, end) samples in its audio."""
    bounds = [*window.chunk_starts, window.audio.shape[0]]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def heard_with(spans: Sequence[tuple[int, int]], need: int = int(DETECT_S * SAMPLE_RATE), reverse: bool = False
               ) -> list[tuple[int, int]]:
    """For each of a window's chunks, the stretch its language is told from: the chunk and the
    chunks after it (else before it) until ``need`` samples, as ``multilingual`` plans do.
    ``reverse``: ``spans`` are given last first, and "after" means earlier in the audio."""
    if reverse:
        mirrored = heard_with([(-b, -a) for a, b in spans], need)
        return [(-b, -a) for a, b in mirrored]
    out = []
    for i, (start, end) in enumerate(spans):
        j, k = i, i
        while end - start < need and (k + 1 < len(spans) or j > 0):
            if k + 1 < len(spans):
                k += 1
                end = spans[k][1]
            else:
                j -= 1
                start = spans[j][0]
        out.append((start, end))
    return out


def split_by_language(window: Window, languages: Sequence[tuple[str, float]]) -> list[Window]:
    """``window`` cut where the languages of its chunks (``chunk_spans``; one (language,
    probability) each) change, each part with its language."""
    spans = chunk_spans(window)
    parts: list[Window] = []
    first = 0
    for i in range(1, len(spans) + 1):
        if i < len(spans) and languages[i][0] == languages[first][0]:
            continue
        start, end = spans[first][0], spans[i - 1][1]
        language, probability = languages[first]
        parts.append(Window(window.audio[start:end], window.offset + start / SAMPLE_RATE, (end - start) / SAMPLE_RATE,
                            language, probability, tuple(a - start for a, _ in spans[first:i])))
        first = i
    return parts


def _collect(audio: np.ndarray, chunks: list[dict], languages: list[tuple[str, float]] | None) -> list[Window]:
    """Merge consecutive speech chunks into windows of at most 30 s (and, with
    ``languages``, of one language each); offsets are on the collapsed timeline."""
    windows: list[Window] = []
    pieces: list[np.ndarray] = []
    length = offset = 0
    current: tuple[str, float] | None = None
    limit = int(WINDOW_S * SAMPLE_RATE)

    def flush() -> None:
        if pieces:
            starts = tuple(int(x) for x in np.cumsum([0] + [p.shape[0] for p in pieces[:-1]]))
            window = replace(Window.of(np.concatenate(pieces), offset / SAMPLE_RATE), chunk_starts=starts)
            windows.append(replace(window, language=current[0], language_probability=current[1]) if current else window)

    for i, chunk in enumerate(chunks):
        size = chunk["end"] - chunk["start"]
        language = languages[i] if languages is not None else None
        if pieces and (length + size > limit or (language is not None and current is not None
                                                  and language[0] != current[0])):
            flush()
            offset += length
            pieces, length = [], 0
        if not pieces:
            current = language
        pieces.append(audio[chunk["start"] : chunk["end"]])
        length += size
    flush()
    return [w for w in windows if w.audio.shape[0]]


def assemble(per_window: Sequence[Sequence[WindowSegment]], plan_: Plan, options: TranscribeOptions) -> list[Segment]:
    """Window results (in window order) -> the file's segments on its own timeline."""
    chunk_of = plan_.chunk_of()
    segments: list[WindowSegment] = []
    for window_segments in per_window:
        for seg in window_segments:
            segments.extend(split_segments(seg, chunk_of))
    restored = restore_times(segments, plan_.chunks)
    return [s.to_segment(i + 1, with_words=options.word_timestamps) for i, s in enumerate(restored)]
