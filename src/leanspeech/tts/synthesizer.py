"""``Synthesizer``: text to speech with a Piper voice on ONNX Runtime, at a chosen precision."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanspeech.errors import InvalidOptionError
from leanspeech.memory import release_memory
from leanspeech.models.store import default_model_dir
from leanspeech.tts.chunking import check_text, chunks
from leanspeech.tts.variants import TTS_PRECISIONS, make_variant
from leanspeech.tts.voices import DEFAULT_VOICE, VoiceFiles, resolve_voice

logger = logging.getLogger(__name__)

#: ``auto`` is float32, the original file, when it fits; when memory is short, the first that
#: fits in this order. Why this order: docs, benchmark "Text-to-speech by precision":
#: float16 runs at float32's speed at half the size, int8 is the smallest and several times slower.
AUTO_ORDER = ("float32", "float16", "int8")


@dataclass(frozen=True)
class TTSResolution:
    requested: str
    precision: str
    reason: str

    def as_dict(self) -> dict:
        return {"requested_precision": self.requested, "precision": self.precision, "reason": self.reason}


def resolve_tts_precision(requested: str, *, fits=None) -> TTSResolution:
    """``fits(precision) -> bool`` says whether a variant fits the memory left (None: all do)."""
    if requested not in ("auto", *TTS_PRECISIONS):
        from leanspeech.errors import UnknownPrecisionError

        raise UnknownPrecisionError(requested, ("auto", *TTS_PRECISIONS))
    if requested != "auto":
        return TTSResolution(requested, requested, f"{requested} as requested")
    if fits is None or fits("float32"):
        return TTSResolution("auto", "float32", "auto: float32 fits, and no variant is faster on CPU (measured)")
    for precision in AUTO_ORDER[1:]:
        if fits(precision):
            why = {"float16": "half the size at the same speed (measured)", "int8": "the smallest (3.4x), 4x slower"}
            return TTSResolution(
                "auto", precision, f"auto: float32 does not fit the memory budget; {precision} is {why[precision]}"
            )
    return TTSResolution("auto", "int8", "auto: nothing fits the memory budget; int8 is the smallest")


SPEEDS = (0.25, 4.0)


def check_input(text: str, speed: float, max_total_length: int) -> str:
    """The text as it will be spoken (whitespace collapsed), or ``InvalidOptionError`` for
    empty or too long text or a speed outside 0.25-4.0."""
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise InvalidOptionError(f"speed must be between {SPEEDS[0]} and {SPEEDS[1]}, got {speed}", "speed")
    return check_text(text, max_total_length)


class Synthesizer:
    """Speech from text.

    >>> with Synthesizer() as tts:
    ...     for pcm in tts.stream("Hello there. How are you?"):
    ...         ...  # int16 numpy arrays at tts.sample_rate, one per sentence
    """

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        *,
        precision: str = "auto",
        model_dir: str | Path | None = None,
        max_chunk_length: int = 280,
        max_total_length: int = 3000,
        fits=None,
    ):
        from piper import PiperVoice

        self.voice_files: VoiceFiles = resolve_voice(voice)
        self.resolution = resolve_tts_precision(precision, fits=fits)
        base = Path(model_dir) if model_dir else default_model_dir()
        self.model_path = make_variant(self.voice_files, self.resolution.precision, base)
        self.max_chunk_length = max_chunk_length
        self.max_total_length = max_total_length
        start = time.perf_counter()
        self.voice = PiperVoice.load(str(self.model_path), config_path=str(self.voice_files.config))
        self.load_s = time.perf_counter() - start
        logger.info(
            "Using voice=%s precision=%s (requested %s): %s",
            self.voice_files.name,
            self.resolution.precision,
            self.resolution.requested,
            self.resolution.reason,
        )

    @property
    def name(self) -> str:
        return self.voice_files.name

    @property
    def sample_rate(self) -> int:
        return int(self.voice.config.sample_rate)

    @property
    def disk_bytes(self) -> int:
        return self.model_path.stat().st_size

    def close(self) -> None:
        self.voice = None  # type: ignore[assignment]  # closed: the voice is let go
        release_memory()

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        """int16 PCM, chunk by chunk (sentence-aware, at most ``max_chunk_length`` characters),
        as soon as each is synthesized. ``speed`` 0.25-4.0 (1 = the voice's own pace)."""
        from piper import SynthesisConfig

        text = check_input(text, speed, self.max_total_length)
        syn = SynthesisConfig(length_scale=(self.voice.config.length_scale or 1.0) / speed)
        for chunk in chunks(text, self.max_chunk_length):
            for audio in self.voice.synthesize(chunk, syn):
                pcm = audio.audio_int16_array
                if pcm.size:
                    yield pcm

    def synthesize(self, text: str, *, speed: float = 1.0) -> np.ndarray:
        parts = list(self.stream(text, speed=speed))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
