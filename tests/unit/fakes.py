"""Fake engines, voices and loader specs for the in-process tier: they implement the same
protocols as the real ones (``stt.engine.Engine``, what the manager and the TTS service
need of a ``Synthesizer``), answer at once and record what they were asked."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leanspeech.config import Settings
from leanspeech.models.catalog import CATALOG
from leanspeech.models.store import ResolvedModel
from leanspeech.precision import Resolution
from leanspeech.runtime.manager import LoaderSpec
from leanspeech.runtime.stt_service import ServedModel
from leanspeech.stt.batcher import Batcher
from leanspeech.stt.segments import TimedWord, WindowSegment
from leanspeech.tts.synthesizer import TTSResolution, check_input

FAKE_WORDS = ("hello", "from", "the", "fake", "engine.")


class FakeEngine:
    """Decodes every window to "hello from the fake engine." with evenly spaced words."""

    backend = "fake"

    def __init__(self, name: str = "tiny.en", *, decode_s: float = 0.0, fail: Exception | None = None,
                 language: str = "en"):
        self.resolved = ResolvedModel(name, Path("/fake") / name, "fake", CATALOG.get(name))
        self.resolution = Resolution("cpu", "int8", "cpu", 0, "int8", "fake engine")
        self.arch = CATALOG["tiny.en"].arch
        self.load_s = 0.01
        self.weight_bytes = 1000
        self.decode_s = decode_s
        self.gate: threading.Event | None = None
        self.waiting = 0  # windows in a decode held by ``gate``
        self.fail = fail
        self.language = language
        self.calls: list[int] = []  # batch size of each decode call
        self.decoded: list[float] = []  # offsets of the windows decoded, in order
        self.closed = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def multilingual(self) -> bool:
        return self.language != "en"

    def max_batch(self, options) -> int:
        return max(1, options.batch_size)

    def check_options(self, options) -> None:
        pass

    def encode(self, window, span_s=None, pad_s=None):
        return float(np.abs(window.audio).mean())

    def detect_language(self, encoded):
        return self.language, 0.9

    def detect_speech_language(self, audio):
        return self.language, 0.9

    def decode(self, items, options):
        if self.gate is not None:  # a test holds this decode until it lets it go
            self.waiting = len(items)
            self.gate.wait(10)
            self.waiting = 0
        if self.decode_s:
            time.sleep(self.decode_s)
        if self.fail is not None:
            raise self.fail
        with self._lock:
            self.calls.append(len(items))
            self.decoded.extend(it.window.offset for it in items)
        out = []
        for it in items:
            w = it.window
            step = w.duration / len(FAKE_WORDS)
            words = tuple(TimedWord(" " + text, w.offset + i * step, w.offset + (i + 1) * step, 0.9)
                          for i, text in enumerate(FAKE_WORDS))
            out.append([WindowSegment(text="".join(x.word for x in words), tokens=(1, 2, 3), start=w.offset,
                                      end=w.offset + w.duration,
                                      words=None if options.without_timestamps else words)])
        return out

    def close(self) -> None:
        self.closed = True


class FakeVoice:
    """A voice that says a 440 Hz tone, 0.05 s per character, one array per sentence."""

    sample_rate = 16000

    def __init__(self, name: str = "en_US-joe-medium", max_total_length: int = 3000):
        self.name = name
        self.resolution = TTSResolution("auto", "float32", "fake voice")
        self.max_total_length = max_total_length
        self.closed = False

    def stream(self, text: str, *, speed: float = 1.0):
        text = check_input(text, speed, self.max_total_length)
        for sentence in text.split(". "):
            n = int(len(sentence) * 0.05 * self.sample_rate / speed)
            t = np.arange(n) / self.sample_rate
            yield (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)

    def close(self) -> None:
        self.closed = True


@dataclass
class Fakes:
    """Loader specs over fake engines, and what they loaded."""

    settings: Settings
    engine_kw: dict = field(default_factory=dict)
    stt_bytes: int = 100 * 2**20
    tts_bytes: int = 50 * 2**20
    engines: list[FakeEngine] = field(default_factory=list)
    voices: list[FakeVoice] = field(default_factory=list)
    batchers: list[Batcher] = field(default_factory=list)

    def stt(self) -> LoaderSpec:
        srv = self.settings.server

        def load(name: str) -> ServedModel:
            engine = FakeEngine(name, **self.engine_kw)
            self.engines.append(engine)
            batcher = Batcher(engine, window_ms=srv.batch_window_ms, max_batch=srv.max_batch if srv.batching else 1,
                              max_queue=srv.max_queue, enabled=srv.batching)
            self.batchers.append(batcher)
            return ServedModel(engine, batcher)

        def describe(served: ServedModel) -> dict:
            e = served.engine
            return {**e.resolution.as_dict(), "weight_bytes": e.weight_bytes, "queue_depth": served.batcher.depth,
                    "max_batch": served.batcher.max_batch}

        return LoaderSpec(load=load, estimate=lambda name: self.stt_bytes, ttl=self.settings.stt.model_ttl,
                          describe=describe, candidates=lambda: ["tiny.en"])

    def tts(self) -> LoaderSpec:
        def load(name: str) -> FakeVoice:
            voice = FakeVoice(name, self.settings.tts.max_total_length)
            self.voices.append(voice)
            return voice

        return LoaderSpec(load=load, estimate=lambda name: self.tts_bytes, ttl=self.settings.tts.model_ttl,
                          describe=lambda v: {**v.resolution.as_dict(), "voice": v.name})

    def loaders(self) -> dict[str, LoaderSpec]:
        return {"stt": self.stt(), "tts": self.tts()}


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 0.3).astype(np.float32)


def wav_bytes(seconds: float = 2.0, rate: int = 16000) -> bytes:
    import io
    import wave

    pcm = (tone(seconds, rate) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()
