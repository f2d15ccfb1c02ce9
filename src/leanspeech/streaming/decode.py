"""Decoding live windows: alone (the library) or through a model's shared ``Batcher`` (the
server, where windows of concurrent sessions and HTTP requests are decoded together)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..audio import SAMPLE_RATE
from ..stt.batched import Window, decode_batch
from ..stt.options import TranscribeOptions
from .session import LiveWindow


@dataclass(frozen=True)
class Decoded:
    segments: list[dict]  # faster-whisper shaped, with words; times relative to the window
    language: str
    language_probability: float


def _prepare(engine, window: LiveWindow, options: TranscribeOptions, language: str | None):
    """Encode the window and pick its tokenizer (the language is detected once, on the
    first window with speech, and then kept)."""
    encoded = engine.encode(engine.features(window.audio))
    probability = 1.0
    if language is None:
        language, probability = engine.detect_language(encoded)
    tokenizer = engine.tokenizer(language, options.task)
    return encoded, Window(window.audio, 0.0, window.audio.shape[0] / SAMPLE_RATE), tokenizer, language, probability


def decode_window(engine, window: LiveWindow, options: TranscribeOptions, language: str | None = None) -> Decoded:
    """Decode one live window on ``engine`` in the calling thread."""
    encoded, win, tokenizer, language, probability = _prepare(engine, window, options, language)
    segments = decode_batch(engine, [encoded], [win], tokenizer, options)[0]
    return Decoded(segments, language, probability)


async def decode_window_shared(served, window: LiveWindow, options: TranscribeOptions,
                               language: str | None = None) -> Decoded:
    """Decode one live window through ``served.batcher`` (``stt.service.ServedModel``): the
    encode runs in a worker thread, the decode joins whatever batch is being collected.
    Cancelling the caller drops the window from its batch."""
    encoded, win, tokenizer, language, probability = await asyncio.to_thread(
        _prepare, served.engine, window, options, language)
    future = served.batcher.submit(encoded, win, tokenizer, options)
    try:
        segments = await asyncio.wrap_future(future)
    except BaseException:
        future.cancel()
        raise
    return Decoded(segments, language, probability)
