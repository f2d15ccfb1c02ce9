"""Word-level helpers for live transcription: comparing successive decodes, dropping the
words already committed, and spotting hallucination loops. Pure functions, no model."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w']+", re.UNICODE)


def norm(word: str) -> str:
    """A word as compared between decodes: case, accents' forms and punctuation ignored
    ("Country," and "country" agree)."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", word).lower())


def agreed_prefix(previous: list[dict], current: list[dict]) -> int:
    """How many leading words two successive decodes agree on (LocalAgreement-2)."""
    n = 0
    for a, b in zip(previous, current):
        if norm(a["word"]) != norm(b["word"]):
            break
        n += 1
    return n


def drop_committed(words: list[dict], committed: list[dict], committed_until: float, *, slack: float = 0.25,
                   max_ngram: int = 5) -> list[dict]:
    """The words of a new decode that are not already committed.

    The buffer keeps some audio before ``committed_until`` (a word is never cut in half), so
    a decode may repeat the last committed words. Words that end before the commit point
    are dropped, then a leading run that repeats the tail of ``committed`` (1 to
    ``max_ngram`` words, compared normalized) is dropped too.
    """
    new = [w for w in words if w["end"] > committed_until + slack or w["start"] >= committed_until - 0.05]
    tail = [norm(w["word"]) for w in committed[-max_ngram:]]
    head = [norm(w["word"]) for w in new[:max_ngram]]
    for n in range(min(len(tail), len(head)), 0, -1):
        if tail[-n:] == head[:n]:
            return new[n:]
    return new


def loop_start(words: list[dict], *, min_repeats: int = 3, max_ngram: int = 4) -> int | None:
    """Index where a hallucination loop begins (the same 1..``max_ngram``-word phrase
    repeated ``min_repeats`` times in a row), or None. Whisper falls into these on noise
    and music; the words from the loop on are not speech."""
    keys = [norm(w["word"]) for w in words]
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


def in_speech(word: dict, regions: list[tuple[float, float]], *, pad: float = 0.2) -> bool:
    """Whether a word overlaps a VAD speech region (times on the same clock)."""
    return any(word["start"] < end + pad and word["end"] > start - pad for start, end in regions)


SENTENCE_END = (".", "?", "!", "。", "？", "！")


def ends_sentence(word: dict) -> bool:
    return word["word"].strip().endswith(SENTENCE_END)
