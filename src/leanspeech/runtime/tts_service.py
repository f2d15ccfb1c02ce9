"""Text-to-speech for concurrent callers: voices held through the model manager, speech
made in a worker thread and handed out chunk by chunk (a sentence at a time) on the event
loop. asyncio, no web imports.

Every check (text, voice, speed, format) runs in ``check`` before any work, so that an
adapter can answer a bad request with an error before it starts streaming audio.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from leanspeech.errors import UnknownModelError
from leanspeech.runtime.manager import Loaded, ModelManager
from leanspeech.tts.encode import check_format, encode_stream
from leanspeech.tts.synthesizer import Synthesizer, check_input, resolve_tts_precision
from leanspeech.tts.voices import OPENAI_VOICES, TTS_MODEL_ALIASES, VOICES, UnknownVoiceError


@dataclass(frozen=True)
class SpeechRequest:
    """A checked request: clean text, a catalog voice, a speed, an output format and the
    ONNX variant asked for (None: the server's setting)."""

    text: str
    voice: str
    speed: float = 1.0
    fmt: str = "wav"
    precision: str | None = None

    @property
    def key(self) -> str:
        """The model manager's name for the voice at this variant: ``voice`` or ``voice@precision``."""
        return voice_key(self.voice, self.precision)


def voice_key(voice: str, precision: str | None) -> str:
    return f"{voice}@{precision}" if precision else voice


def split_voice_key(key: str) -> tuple[str, str | None]:
    """``voice@precision`` -> (voice, precision); a plain voice -> (voice, None)."""
    voice, _, precision = key.partition("@")
    return voice, precision or None


class Utterance:
    """One request's hold on a voice: its sample rate and its audio as it is made.
    ``close()`` (idempotent, never awaits) lets the voice go; call it when done or gone."""

    def __init__(self, manager: ModelManager, entry: Loaded[Synthesizer], request: SpeechRequest):
        self.request = request
        self._manager = manager
        self._entry = entry
        self._cancel = threading.Event()
        self._released = threading.Lock()

    @property
    def synthesizer(self) -> Synthesizer:
        return self._entry.obj

    @property
    def sample_rate(self) -> int:
        return self.synthesizer.sample_rate

    def pcm(self) -> AsyncIterator[np.ndarray]:
        """int16 PCM arrays at ``sample_rate``, one per text chunk, as each is made."""
        r = self.request
        return iterate_in_thread(lambda: self.synthesizer.stream(r.text, speed=r.speed), self._cancel)

    def encoded(self) -> AsyncIterator[bytes]:
        """The audio in the request's format, as its bytes are made."""
        r = self.request

        def produce() -> Iterator[bytes]:
            return encode_stream(self.synthesizer.stream(r.text, speed=r.speed), r.fmt, self.sample_rate)

        return iterate_in_thread(produce, self._cancel)

    def close(self) -> None:
        self._cancel.set()
        if self._released.acquire(blocking=False):
            try:  # never awaits: a cancelled stream's awaits may never complete
                asyncio.get_running_loop().run_in_executor(None, self._manager.checkin, self._entry)
            except RuntimeError:  # no event loop here: already on a worker thread
                self._manager.checkin(self._entry)


class VoiceService:
    def __init__(self, manager: ModelManager, default_voice: str, max_total_length: int):
        self.manager = manager
        self.default_voice = default_voice
        self.max_total_length = max_total_length

    def voice_name(self, requested: str | None) -> str:
        """The catalog voice for a request's voice; OpenAI's voice names map to the default."""
        name = (requested or "").strip() or self.default_voice
        if name in OPENAI_VOICES:
            return self.default_voice
        if name not in VOICES:
            raise UnknownVoiceError(f"unknown voice {name!r} (known: {', '.join([*VOICES, *OPENAI_VOICES])})")
        return name

    def check(self, text: str, voice: str | None = None, *, speed: float = 1.0, fmt: str = "wav",
              model: str | None = None, precision: str | None = None) -> SpeechRequest:
        """A checked request. ``model``: OpenAI's speech model names (tts-1, tts-1-hd,
        gpt-4o-mini-tts) or none serve ``voice``; a catalog voice as the model is that voice
        (for clients that only let one choose the model) unless ``voice`` names another."""
        model = (model or "").strip()
        if model and model not in TTS_MODEL_ALIASES:
            if model not in VOICES:
                raise UnknownModelError(model, (*TTS_MODEL_ALIASES, *VOICES))
            if not voice or voice in OPENAI_VOICES:
                voice = model
        text = check_input(text, speed, self.max_total_length)
        if precision == "auto":
            precision = None  # the server's setting (LEANSPEECH_TTS__PRECISION): the same model
        if precision is not None:
            resolve_tts_precision(precision)  # an unknown variant fails here, before any work
        return SpeechRequest(text, self.voice_name(voice), speed, check_format(fmt), precision)

    async def open(self, request: SpeechRequest) -> Utterance:
        """Load (or take) the request's voice; the caller must ``close()`` the utterance."""
        entry = await asyncio.to_thread(self.manager.checkout, "tts", request.key)
        return Utterance(self.manager, entry, request)


async def iterate_in_thread(make_iter: Callable[[], Iterator[Any]], cancel: threading.Event) -> AsyncIterator[Any]:
    """Run a blocking iterator in a worker thread and yield its items on the event loop, at
    most a few ahead of the reader. ``cancel`` (or the reader going away) stops the thread."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=4)
    done = object()

    def send(item: object) -> bool:
        """Hand one item to the event loop; False once nobody reads any more."""
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=0.25)
                return True
            except TimeoutError:
                if cancel.is_set():
                    future.cancel()
                    return False
            except Exception:
                return False

    def worker() -> None:
        try:
            for item in make_iter():
                if cancel.is_set() or not send(item):
                    return
        except BaseException as exc:  # surfaced to the reader
            send(exc)
        finally:
            send(done)

    threading.Thread(target=worker, name="leanspeech-tts", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
