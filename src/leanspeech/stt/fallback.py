"""When a decoded window is trusted: Whisper's rules, as faster-whisper applies them.

A window's text that compresses too well (a loop) or whose tokens are too unlikely is decoded
again at a rising temperature (``FALLBACK_TEMPERATURES``), unless the window sounds silent
(``no_speech_prob`` above its threshold with a low log-probability: nothing is kept). A
packed window (``packing``) is judged part by part: its parts' texts together may compress
well (two requests that say the same words) without any of them looping.
"""

from __future__ import annotations

from typing import Any

from leanspeech.stt.options import TranscribeOptions

FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)


def decoded(result: Any, tokenizer: Any, temperature: float = 0.0) -> dict:
    """What the rules read of one CTranslate2 generate result (its best hypothesis)."""
    tokens = result.sequences_ids[0]
    length = len(tokens)
    return {
        "tokens": tokens,
        "avg_logprob": result.scores[0] * length / (length + 1),
        "no_speech_prob": result.no_speech_prob,
        "compression_ratio": compression_ratio(tokenizer.decode([t for t in tokens if t < tokenizer.eot])),
        "temperature": temperature,
    }


def compression_ratio(text: str) -> float:
    from faster_whisper.transcribe import get_compression_ratio

    return get_compression_ratio(text) if text else 0.0


def needs_fallback(out: dict, options: TranscribeOptions, text: str | None = None) -> bool:
    """Whether ``out`` (``decoded``) should be decoded again at a higher temperature; ``text``:
    judge the compression of that text (one packed part's) instead of the whole window's."""
    ratio = out["compression_ratio"] if text is None else compression_ratio(text)
    return (
        ratio > options.compression_ratio_threshold or out["avg_logprob"] < options.log_prob_threshold
    ) and out["no_speech_prob"] <= options.no_speech_threshold


def silent(out: dict, options: TranscribeOptions) -> bool:
    """Whether the window sounds silent: nothing of it is kept."""
    return out["no_speech_prob"] > options.no_speech_threshold and out["avg_logprob"] < options.log_prob_threshold
