"""WER, CER and agreement after Whisper's normalization (the maintained ``whisper-normalizer``
port of openai/whisper's normalizers): ``EnglishTextNormalizer`` for English (numbers,
spellings, punctuation, case), ``BasicTextNormalizer`` (punctuation, case, diacritics kept)
for every other language."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@functools.lru_cache(maxsize=1)
def _basic():
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer()


def normalize(text: str, language: str = "en") -> str:
    return " ".join((_normalizer() if language == "en" else _basic())(text).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


def cer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.cer(ref, hyp))


def agreement(a: str, b: str) -> float:
    """Word-level agreement of two transcripts: 1 - WER of one against the other (floored at 0)."""
    return max(0.0, 1.0 - wer(a, b))


def corpus_scores(pairs: list[tuple[str, str]], language: str = "en") -> tuple[float, float]:
    """(WER, CER) over several files: errors summed over all words/characters."""
    import jiwer

    refs = [normalize(r, language) for r, _ in pairs]
    hyps = [normalize(h, language) for _, h in pairs]
    keep = [(r, h) for r, h in zip(refs, hyps, strict=False) if r]
    if not keep:
        return 0.0, 0.0
    r, h = zip(*keep, strict=False)
    return float(jiwer.wer(list(r), list(h))), float(jiwer.cer(list(r), list(h)))
