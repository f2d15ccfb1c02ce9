"""Typed segments and words as they come out of a window's decode, and the rules that put
a file's windows back together: cut at sentence ends, at VAD pauses and at a maximum length,
then map times from the VAD-collapsed timeline back to the file's.

Every path (files, the server, live sessions, both engines) carries these types; the public
result types (``result.Segment``, ``result.Word``) are made from them at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.result import Segment, Word

#: What ends a sentence, in the scripts Whisper writes (Latin, CJK full-width).
SENTENCE_END = (".", "?", "!", "。", "？", "！")
MAX_SEGMENT_S = 15.0


@dataclass(frozen=True)
class TimedWord:
    """One word with its times (seconds) and the tokens it was decoded from."""

    word: str
    start: float
    end: float
    probability: float = 0.0
    tokens: tuple[int, ...] = ()

    def shifted(self, offset: float) -> TimedWord:
        return replace(self, start=self.start + offset, end=self.end + offset)

    def ends_sentence(self) -> bool:
        return self.word.strip().endswith(SENTENCE_END)


@dataclass(frozen=True)
class WindowSegment:
    """Text decoded from (part of) one window. ``words`` is None when the window was not
    aligned (a plain-text answer needs no times), and a tuple, maybe empty, when it was."""

    text: str
    tokens: tuple[int, ...]
    start: float
    end: float
    seek: int = 0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    words: tuple[TimedWord, ...] | None = None
    language: str | None = None

    def to_segment(self, index: int, *, with_words: bool) -> Segment:
        words = None
        if with_words and self.words is not None:
            words = tuple(Word(w.start, w.end, w.word, w.probability) for w in self.words)
        return Segment(
            id=index, start=self.start, end=self.end, text=self.text, words=words,
            avg_logprob=self.avg_logprob, no_speech_prob=self.no_speech_prob,
            compression_ratio=self.compression_ratio, temperature=self.temperature,
            tokens=self.tokens, seek=self.seek, language=self.language,
        )


def split_segments(segment: WindowSegment, chunk_of: Callable[[float], int] | None) -> list[WindowSegment]:
    """Cut one window's text into segments at sentence ends, at VAD pauses (a word in a
    different speech chunk than the one before) and at ``MAX_SEGMENT_S``."""
    if segment.words is None:
        return [segment] if segment.tokens else []
    out: list[WindowSegment] = []
    current: list[TimedWord] = []

    def flush() -> None:
        if current:
            out.append(replace(
                segment, words=tuple(current), text="".join(w.word for w in current),
                tokens=tuple(t for w in current for t in w.tokens), start=current[0].start, end=current[-1].end,
            ))
            current.clear()

    for word in segment.words:
        if current:
            previous = current[-1]
            new_chunk = chunk_of is not None and chunk_of(word.start) != chunk_of(previous.end)
            too_long = word.end - current[0].start > MAX_SEGMENT_S
            if previous.ends_sentence() or new_chunk or too_long:
                flush()
        current.append(word)
    flush()
    return out


def restore_times(segments: Sequence[WindowSegment], chunks: list[dict] | None) -> list[WindowSegment]:
    """Map segment (and word) times from the VAD-collapsed timeline back to the file's."""
    if not chunks:
        return list(segments)
    from faster_whisper.vad import SpeechTimestampsMap

    ts_map = SpeechTimestampsMap(chunks, SAMPLE_RATE)
    out = []
    for seg in segments:
        if seg.words:
            words = []
            for w in seg.words:
                idx = ts_map.get_chunk_index((w.start + w.end) / 2)
                words.append(replace(w, start=ts_map.get_original_time(w.start, idx),
                                     end=ts_map.get_original_time(w.end, idx)))
            out.append(replace(seg, words=tuple(words), start=words[0].start, end=words[-1].end))
        else:
            out.append(replace(seg, start=ts_map.get_original_time(seg.start),
                               end=ts_map.get_original_time(seg.end, is_end=True)))
    return out
