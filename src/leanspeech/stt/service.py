"""Speech-to-text for concurrent callers: a loaded model held through the model manager,
windows encoded per request and decoded across requests by the ``Batcher``.

asyncio, no web imports: the server awaits ``SpeechService.transcribe``; a cancelled call
cancels its queued windows and releases its model handle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..audio import SAMPLE_RATE, decode_audio
from ..manager import ModelManager
from .batched import assemble, plan
from .batcher import Batcher
from .engine import WhisperEngine
from .options import TranscribeOptions
from .result import Timings, Transcription, TranscriptionInfo


@dataclass
class ServedModel:
    """What the manager holds for one STT model: the engine and its batcher."""

    engine: WhisperEngine
    batcher: Batcher

    def close(self) -> None:
        self.batcher.close()
        self.engine.close()


class SpeechService:
    def __init__(self, manager: ModelManager, on_audio: Callable[[float, float], None] | None = None):
        self.manager = manager
        self.on_audio = on_audio  # (audio seconds, decode seconds) after each request

    async def transcribe(
        self,
        model: str,
        data: bytes,
        options: TranscribeOptions,
        on_text: Callable[[str], Awaitable[None]] | None = None,
    ) -> Transcription:
        """Transcribe uploaded bytes. ``on_text`` gets each window's text as soon as it is decoded."""
        samples = await asyncio.to_thread(decode_audio, data)  # bad audio fails before a model loads
        entry = await asyncio.to_thread(self.manager.checkout, "stt", model)
        futures = []
        try:
            served: ServedModel = entry.obj
            engine = served.engine
            start = time.perf_counter()
            p = await asyncio.to_thread(plan, samples, options)
            served.batcher.reserve(len(p.windows))
            language, probability = options.language, 1.0
            for window in p.windows:
                encoded = await asyncio.to_thread(lambda w=window: engine.encode(engine.features(w.audio)))
                if language is None:
                    language, probability = engine.detect_language(encoded)
                tokenizer = engine.tokenizer(language, options.task)
                futures.append(served.batcher.submit(encoded, window, tokenizer, options))
            per_window = []
            for future in futures:
                result = await asyncio.wrap_future(future)
                per_window.append(result)
                if on_text is not None:
                    text = "".join(seg["text"] for seg in result)
                    if text.strip():
                        await on_text(text)
            segments = assemble(per_window, p, options)
            decode_s = time.perf_counter() - start
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            await asyncio.to_thread(self.manager.checkin, entry)
        duration = samples.shape[0] / SAMPLE_RATE
        if self.on_audio is not None:
            self.on_audio(duration, decode_s)
        res = engine.resolution
        info = TranscriptionInfo(
            duration=duration, duration_after_vad=p.speech_s, language=language or "en",
            language_probability=probability, task=options.task, model=engine.name, device=res.device_id,
            precision=res.compute_type, requested_precision=res.requested_precision, precision_reason=res.reason,
            batch_size=served.batcher.max_batch, timings=Timings(engine.load_s, decode_s, duration),
        )
        return Transcription(tuple(segments), info)
