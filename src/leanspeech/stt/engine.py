"""The protocol every speech-to-text engine implements (CTranslate2 in ``ct2_engine``,
PyTorch in ``torch_engine``), so that the decode loop, the batcher and the services never
know which backend runs.

A window goes through three steps: ``encode`` (features and, where the backend can, the
encoder), ``detect_language`` on what ``encode`` gave, and ``decode`` of a batch of encoded
windows, which may mix languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from leanspeech.models.catalog import Architecture
from leanspeech.models.store import ResolvedModel
from leanspeech.precision import Resolution
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.segments import WindowSegment
from leanspeech.stt.windows import Window


@dataclass(frozen=True)
class EncodedWindow:
    """A window ready to decode: what the engine's ``encode`` made of it, and its language."""

    window: Window
    encoded: Any
    language: str
    language_probability: float


@runtime_checkable
class Engine(Protocol):
    backend: str  # "ctranslate2" | "torch"
    resolved: ResolvedModel
    resolution: Resolution
    arch: Architecture
    load_s: float
    weight_bytes: int

    @property
    def name(self) -> str: ...

    @property
    def multilingual(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def max_batch(self, options: TranscribeOptions) -> int:
        """How many windows one ``decode`` call may take under ``options`` (memory-bound)."""
        ...

    def check_options(self, options: TranscribeOptions) -> None:
        """Raise ``InvalidOptionError`` for options this engine cannot honour, before any work."""
        ...

    def encode(self, window: Window, span_s: float | None = None, pad_s: float | None = None) -> Any:
        """Whatever ``decode`` needs of one window (CTranslate2: the encoder output).
        ``span_s``: a length to encode the window as (at least its own), where the engine
        shortens the encoder input, so that a group of windows encodes to one length.
        ``pad_s``: the padding after the audio, where the engine shortens the encoder input
        (None: its own default)."""
        ...

    def detect_language(self, encoded: Any) -> tuple[str, float]:
        """(language code, probability); English-only models answer ("en", 1.0)."""
        ...

    def detect_speech_language(self, audio: np.ndarray, min_s: float = 10.0) -> tuple[str, float]:
        """The language of a piece of speech (at most 30 s), as cheaply as the backend can
        (the encoder's input padded to ``min_s`` seconds, where it can take less than 30)."""
        ...

    def decode(self, items: Sequence[EncodedWindow], options: TranscribeOptions) -> list[list[WindowSegment]]:
        """Decode a batch; one list of segments per item, times on the window's timeline
        shifted by its offset."""
        ...

    def close(self) -> None: ...
