"""Speech-to-text for concurrent callers: models held through the model manager, and the
decode loop (``decode_loop``) run in worker threads with each model's ``Batcher`` as the
decoder, so that windows of concurrent requests and live sessions are decoded together.

asyncio, no web imports. Nothing here blocks the event loop: every model load, VAD pass,
encode and language detection runs in the service's worker threads. A cancelled call
cancels its queued windows and releases its model handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from leanspeech.audio import AudioStream, SplitChannels
from leanspeech.runtime.manager import Loaded, ModelManager
from leanspeech.stt.batcher import Batcher
from leanspeech.stt.blocks import Feed, SegmentStream
from leanspeech.stt.channels import transcribe_split
from leanspeech.stt.decode_loop import CancelToken, Decoded, decode_windows
from leanspeech.stt.engine import Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Transcription
from leanspeech.stt.windows import WINDOW_S, Window


@dataclass
class ServedModel:
    """What the manager holds for one speech-to-text model: the engine and its batcher."""

    engine: Engine
    batcher: Batcher

    def close(self) -> None:
        self.batcher.close()
        self.engine.close()


class SpeechService:
    """``transcribe`` (whole files, optionally streaming each window's text as it is
    decoded), ``hold`` (a model handle for a live session) and ``decode_live`` (one live
    window)."""

    def __init__(self, manager: ModelManager, *, workers: int = 32, max_in_flight: int = 16,
                 on_audio: Callable[[float, float], None] | None = None):
        self.manager = manager
        self.max_in_flight = max_in_flight  # windows one request may have queued at once
        self.on_audio = on_audio  # (audio seconds, decode seconds) after each request
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="leanspeech-stt")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in one of the service's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- whole files ----------------------------------------------------------------

    async def transcribe(
        self,
        model: str,
        audio: AudioStream | np.ndarray | SplitChannels,
        options: TranscribeOptions,
        on_text: Callable[[str, float], Awaitable[None]] | None = None,
    ) -> Transcription:
        """Transcribe audio: an ``AudioStream`` (read piece by piece as it is decoded, so a
        long upload is never whole in memory), decoded 16 kHz mono float32, or
        ``SplitChannels`` with ``channels="split"`` (each channel read the same way).
        ``on_text(text, progress)`` gets each window's text as soon as it and the windows
        before it are decoded, with the share of the audio done (0-1)."""
        loop = asyncio.get_running_loop()
        token = CancelToken()
        texts: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

        def emit(text: str, progress: float) -> None:
            loop.call_soon_threadsafe(texts.put_nowait, (text, progress))

        sink = emit if on_text is not None else None
        job: asyncio.Future[Transcription] = loop.run_in_executor(
            self._executor, self._transcribe_sync, model, audio, options, sink, token)
        try:
            if on_text is not None:
                while True:
                    getter: asyncio.Future[tuple[str, float]] = asyncio.ensure_future(texts.get())
                    waiting: list[asyncio.Future[Any]] = [job, getter]
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        break
                    await on_text(*getter.result())
                while not texts.empty():  # every emit ran before the job finished
                    await on_text(*texts.get_nowait())
            return await job
        except BaseException:
            token.cancel()  # the worker stops at its next window and checks the model in
            raise

    def _transcribe_sync(self, model: str, audio: AudioStream | np.ndarray | SplitChannels,
                         options: TranscribeOptions, emit: Callable[[str, float], None] | None,
                         token: CancelToken) -> Transcription:
        entry: Loaded[ServedModel] = self.manager.checkout("stt", model)
        try:
            served = entry.obj
            served.engine.check_options(options)
            start = time.perf_counter()
            if isinstance(audio, SplitChannels):
                result = self._channels(served, audio, options, emit, token)
            else:
                result = self._streamed(served, audio, options, emit, token)
            decode_s = time.perf_counter() - start
        finally:
            self.manager.checkin(entry)
        if self.on_audio is not None:
            self.on_audio(result.info.duration, decode_s)
        return result

    def _streamed(self, served: ServedModel, audio: AudioStream | np.ndarray, options: TranscribeOptions,
                  emit: Callable[[str, float], None] | None, token: CancelToken) -> Transcription:
        """One track, read and decoded block by block (``stt/blocks.py``)."""
        source = audio if isinstance(audio, AudioStream) else AudioStream(audio)
        try:
            stream = self._stream(served, source, options, emit, token)
            segments = tuple(stream)
        finally:
            source.close()
        return Transcription(segments, stream.info)

    def _channels(self, served: ServedModel, split: SplitChannels, options: TranscribeOptions,
                  emit: Callable[[str, float], None] | None, token: CancelToken) -> Transcription:
        """Each channel of a split stereo file through the same stream as a mono file, one
        after the other (``channels.transcribe_split``), segments merged in time."""
        return transcribe_split(split, lambda source, channel, count: self._stream(
            served, source, options, emit, token, share=(channel, count)))

    def _stream(self, served: ServedModel, source: AudioStream, options: TranscribeOptions,
                emit: Callable[[str, float], None] | None, token: CancelToken,
                share: tuple[int, int] = (0, 1)) -> SegmentStream:
        """``source``'s segments, its windows decoded through the model's batcher; ``emit``
        gets each window's text with the share of the whole audio done (``share``: this
        track's index and the number of tracks)."""
        channel, count = share

        def on_window(segments: list, progress: float) -> None:
            text = "".join(seg.text for seg in segments)
            if emit is not None and text.strip():
                emit(text, (channel + progress) / count)

        windows = math.ceil((source.duration or 0.0) / WINDOW_S)  # as many as the audio could fill
        served.batcher.reserve(min(max(1, windows), self.max_in_flight))
        return SegmentStream(served.engine, source, options, served.batcher,
                             Feed(group=1, batch_size=served.batcher.max_batch, max_in_flight=self.max_in_flight,
                                  cancel=token, duration=source.duration, on_window=on_window))

    # ---- live sessions --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def hold(self, model: str) -> AsyncIterator[ServedModel]:
        """Keep ``model`` loaded (a manager handle) for as long as the block runs."""
        entry: Loaded[ServedModel] = await self.run_blocking(self.manager.checkout, "stt", model)
        try:
            yield entry.obj
        finally:
            # synchronous on purpose: a cancelled task's awaits may never complete
            self.manager.checkin(entry)

    async def decode_live(self, served: ServedModel, audio: np.ndarray, options: TranscribeOptions, *,
                          urgent: bool = True) -> Decoded:
        """Decode one live window (times relative to its start) through the model's batcher,
        with the same loop as files; ``urgent``: ahead of the files and requests queued there
        (``Batcher.urgent``). ``options.language`` None: detect it."""
        token = CancelToken()
        window = Window.of(audio)
        decoder = served.batcher.urgent if urgent else served.batcher
        try:
            return await self.run_blocking(lambda: decode_windows(served.engine, [window], options, decoder,
                                                                cancel=token))
        except BaseException:
            token.cancel()
            raise
