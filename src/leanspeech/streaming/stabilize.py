"""Word-level helpers for live transcription: comparing successive decodes, dropping the
words already committed, and spotting hallucination loops. Pure functions, no model."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from leanspeech.stt.segments import TimedWord

_PUNCT = re.compile(r"[^\w']+", re.UNICODE)


def norm(word: str) -> str:
    """A word as compared between decodes: case, accents' forms and punctuation ignored
    ("Country," and "country" agree)."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", word).lower())


def agreed_prefix(previous: Sequence[TimedWord], current: Sequence[TimedWord]) -> int:
    """How many leading words two successive decodes agree on (LocalAgreement-2)."""
    n = 0
    for a, b in zip(previous, current, strict=False):
        if norm(a.word) != norm(b.word):
            break
        n += 1
    return n


def drop_committed(words: list[TimedWord], committed: Sequence[TimedWord], committed_until: float, *,
                   slack: float = 0.25, max_ngram: int = 5, near: float = 1.0,
                   window_start: float | None = None) -> list[TimedWord]:
    """The words of a new decode that are not already committed.

    The buffer keeps audio before ``committed_until`` (completed speech stays as context), so
    a decode repeats the last committed words. They are found by text first: the longest
    tail of ``committed`` (1 to ``max_ngram`` words, compared normalized) that the new decode
    repeats, ending within ``near`` seconds of the commit point; the words after it are new.
    Times alone are not enough: a re-decode moves short words by a few hundred ms, and a
    time cut dropped "for" from "can do | for you" (timestamps of "for" before the commit
    point). A repeat must sit where the committed words sat, at both ends: a one-word tail
    ("you." committed at 7.2-8.3 s, its end stretched over the pause) once matched the "you"
    of "ask what you" 1.7 s later, in a window cut just before "ask", and the new segment lost
    "ask what you". Only when the decode does not repeat the tail are words dropped by time:
    those that end before the commit point. When the window begins less than 0.3 s before the
    commit point (the buffer was cut there), no committed word fits before it, so any word
    that ends after the commit point is new, however early the decoder says it starts.
    """
    tail = list(committed[-max_ngram:])
    keys = [norm(w.word) for w in words]
    for n in range(len(tail), 0, -1):
        phrase, first = [norm(w.word) for w in tail[-n:]], tail[-n].start
        ends = [j for j in range(n, len(words) + 1)
                if keys[j - n : j] == phrase and abs(words[j - 1].end - committed_until) <= near
                and abs(words[j - n].start - first) <= near]
        if ends:
            return words[min(ends, key=lambda j: abs(words[j - 1].end - committed_until)) :]
    if window_start is not None and committed_until - window_start < 0.3:
        return [w for w in words if w.end > committed_until + 0.05]
    return [w for w in words if w.end > committed_until + slack or w.start >= committed_until - 0.05]


def loop_start(words: Sequence[TimedWord], *, min_repeats: int = 3, max_ngram: int = 4) -> int | None:
    """Index where a hallucination loop begins (the same 1..``max_ngram``-word phrase
    repeated ``min_repeats`` times in a row), or None. Whisper falls into these on noise
    and music; the words from the loop on are not speech."""
    keys = [norm(w.word) for w in words]
    for i in range(len(keys)):
        for n in range(1, max_ngram + 1):
            phrase = keys[i : i + n]
            if len(phrase) < n or not any(phrase):
                continue
            repeats = 1
            j = i + n
            while keys[j : j + n] == phrase:
                repeats += 1
                j += n
            if repeats >= min_repeats:
                return i
    return None


def in_speech(word: TimedWord, regions: Sequence[tuple[float, float]], *, pad: float = 0.2) -> bool:
    """Whether a word overlaps a VAD speech region (times on the same clock)."""
    return any(word.start < end + pad and word.end > start - pad for start, end in regions)


#: A word the aligner gave at most this long has no frames of its own (see ``speech_words``).
COLLAPSED_S = 0.02


def speech_words(words: Sequence[TimedWord], regions: Sequence[tuple[float, float]]) -> list[TimedWord]:
    """The words heard in VAD speech: those that overlap a region (``in_speech``), and a word
    the aligner squeezed to no length right where the word before it, kept, ends. At the end
    of a phrase the aligner can stretch the last-but-one word over the last one's audio and
    leave the last one none, past the speech: a closing decode heard "...during the summer."
    with " the" at 16.84-17.60 s and " summer." at 17.60-17.60, the speech ending at 17.38; the
    phrase completed without "summer.", which came 3 s later as a segment of its own."""
    kept: list[TimedWord] = []
    after_kept = False  # the word before this one was kept
    for w in words:
        squeezed = after_kept and w.end - w.start <= COLLAPSED_S and abs(w.start - kept[-1].end) <= COLLAPSED_S
        after_kept = squeezed or in_speech(w, regions)
        if after_kept:
            kept.append(w)
    return kept
