"""``TurnTranscriber``: one utterance (a Realtime API item, a Wyoming transcription) through
a live session: audio in while it is spoken, append-only text deltas out as words become
stable, and the final text once the audio has ended.

It holds the model only for the turn (``Runtime.turn`` opens the live session), so every
turn of every protocol decodes through the same loaded model and batcher, under the same
budget, as the WhisperLive sessions and the HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.streaming.driver import LiveTranscriber, OnSegments
from leanspeech.streaming.options import LiveBufferFullError
from leanspeech.streaming.session import LiveSegment

OpenLive = Callable[[OnSegments], AbstractAsyncContextManager[LiveTranscriber]]
OnDelta = Callable[[str], Awaitable[None]]


class TurnTranscriber:
    def __init__(self, open_live: OpenLive, on_delta: OnDelta | None = None, *, max_buffer_s: float = 60.0):
        self._open_live = open_live
        self._on_delta = on_delta
        self._max_buffer_s = max_buffer_s
        self._live: LiveTranscriber | None = None
        self._pending: list[np.ndarray] = []  # audio fed before the model was held
        self._ended = False
        self.sent = ""  # the text given out as deltas so far
        self.seconds = 0.0
        self.language: str | None = None
        self._task = asyncio.create_task(self._run())

    def feed(self, samples: np.ndarray) -> None:
        """16 kHz mono float32 samples of this turn. A turn that has failed (its model could
        not be had) takes no more: ``result()`` says why. ``LiveBufferFullError`` when audio
        comes faster than it is decoded, past the session's ``max_buffer_s``, also while the
        model is still being loaded."""
        if self._ended or samples.shape[0] == 0 or self._task.done():
            return
        if self._live is None:
            limit = self._max_buffer_s
            if self.seconds + samples.shape[0] / SAMPLE_RATE > limit:
                raise LiveBufferFullError(self.seconds + samples.shape[0] / SAMPLE_RATE, limit)
            self._pending.append(samples)
        else:
            self._live.feed(samples)
        self.seconds += samples.shape[0] / SAMPLE_RATE

    def end(self) -> None:
        """The turn's audio is complete; ``result()`` gives its text."""
        self._ended = True
        if self._live is not None:
            self._live.end()

    async def result(self) -> str:
        """The final text (raises what the decode raised: a budget refusal, a bad option)."""
        self.end()
        return await self._task

    async def cancel(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _run(self) -> str:
        async with self._open_live(self._on_segments) as live:
            self._live = live
            for chunk in self._pending:
                live.feed(chunk)
            self._pending = []
            if self._ended:
                live.end()
            await live.run()
            self.language = live.session.language
            final = live.session.stable_text().strip()
        await self._emit(final)
        return final

    async def _on_segments(self, segments: list[LiveSegment], final: bool) -> None:
        if not final and self._live is not None:
            await self._emit(self._live.session.stable_text().strip())

    async def _emit(self, text: str) -> None:
        """The new end of ``text`` as a delta, when it extends what was sent (a revision of
        sent words is not sent as a delta; the final text carries it)."""
        if self._on_delta is None or len(text) <= len(self.sent) or not text.startswith(self.sent):
            return
        delta, self.sent = text[len(self.sent):], text
        await self._on_delta(delta)
