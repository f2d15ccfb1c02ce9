"""``LiveTranscriber``: one live session on a model the server holds, for any protocol.

A protocol adapter (WhisperLive, the OpenAI Realtime API, ...) feeds it audio and reads
updates from its callbacks; everything between (VAD, when to decode, the decode through the
model's shared batcher, which words are final) happens here and in ``StreamingSession``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.runtime.stt_service import ServedModel, SpeechService
from leanspeech.streaming.options import LiveOptions
from leanspeech.streaming.session import LiveSegment, StreamingSession
from leanspeech.stt.batcher import QueueFullError

#: ``on_segments(segments, final)``: the last completed segments and the one in progress.
OnSegments = Callable[[list[LiveSegment], bool], Awaitable[None]]
#: ``on_language(code, probability)``: once, when detected (the options gave none).
OnLanguage = Callable[[str, float], Awaitable[None]]

QUEUE_FULL_RETRY_S = 0.2
#: Audio received faster than this many times real time marks a session as a fast sender.
FAST_PACE = 1.5
#: A fast sender waits at most this long for the model to be free before each decode:
#: on a busy server a flood is closed at its buffer bound (LIVE__MAX_BUFFER_S) before it costs anyone.
BEHIND_WAIT_S = 30.0
#: The final pass retries a full queue this long before it fails the session with the error.
FINAL_WAIT_S = 30.0
#: The language is settled (and told) once a decode of at least SURE_S seconds is at least
#: SURE_P sure of it: the first half second of speech is often heard as another language.
SURE_S = 2.0
SURE_P = 0.5


class LiveTranscriber:
    def __init__(self, speech: SpeechService, served: ServedModel, options: LiveOptions, *,
                 on_segments: OnSegments, on_language: OnLanguage | None = None):
        self.speech = speech
        self.served = served
        self.session = StreamingSession(options)
        self.on_segments = on_segments
        self.on_language = on_language
        self._wake = asyncio.Event()
        self._eof = asyncio.Event()
        self._first_audio: float | None = None

    def feed(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float32 samples (finite)."""
        if self._first_audio is None:
            self._first_audio = time.monotonic()
        self.session.feed(samples)
        self._wake.set()

    @property
    def faster_than_real_time(self) -> bool:
        """Audio has come faster than real time: more than FAST_PACE times the wall time since
        the first audio, after a head start of one buffer (a client may send what it held)."""
        if self._first_audio is None:
            return False
        elapsed = time.monotonic() - self._first_audio
        return self.session.received_s > FAST_PACE * elapsed + self.session.options.context_s

    def end(self) -> None:
        """The stream ended: ``run`` decodes what is left, sends the final segments, returns."""
        self._eof.set()
        self._wake.set()

    async def _until_idle(self) -> None:
        """Wait (bounded) until the model has no other window queued or being encoded."""
        deadline = asyncio.get_running_loop().time() + BEHIND_WAIT_S
        while self.served.batcher.busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        session = self.session
        opts = session.options.transcribe_options()
        language = session.options.language  # None: detected on each decode until it is sure
        told_language = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            final = self._eof.is_set()
            before = session.segments()
            full = 0
            while True:
                window = await self.speech.run_blocking(session.next_window, final)
                if window is None:
                    break
                try:  # multilingual: every decode detects its own language
                    asked = opts if session.options.multilingual else opts.with_(language=language)
                    # a session that sends at real-time pace is decoded ahead of the files and requests
                    # queued in the batcher, even when the load has put it behind; one that sends
                    # faster than that (a flood, a file streamed fast) waits its turn with them and
                    # takes only the time nobody else needs, so that it cannot starve anyone
                    urgent = not self.faster_than_real_time
                    if not urgent:
                        await self._until_idle()
                    decoded = await self.speech.decode_live(self.served, window.audio, asked, urgent=urgent)
                except QueueFullError:  # saturated: try again (with more audio, unless it has all come)
                    if final:  # the rest is decoded, or the caller hears why not: never skipped silently
                        full += 1
                        if full * QUEUE_FULL_RETRY_S > FINAL_WAIT_S:
                            raise
                        await asyncio.sleep(QUEUE_FULL_RETRY_S)
                        continue
                    await asyncio.sleep(QUEUE_FULL_RETRY_S)
                    self._wake.set()
                    break
                heard = window.audio.shape[0] / SAMPLE_RATE
                sure = decoded.language_probability >= SURE_P and heard >= SURE_S
                if language is None and (sure or heard >= session.options.context_s or final):
                    language = decoded.language  # kept from here on
                    if not told_language and self.on_language is not None:
                        told_language = True
                        await self.on_language(decoded.language, decoded.language_probability)
                session.apply(window, decoded.per_window[0])
                if not final:
                    break
            if final:
                session.finish()
                segments = session.segments()
                if segments:
                    await self.on_segments(segments, True)
                return
            segments = session.segments()
            if segments != before:
                await self.on_segments(segments, False)
