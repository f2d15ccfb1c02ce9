"""A loaded CTranslate2 Whisper model, the precision it really runs at, and the low-level
steps (features, encode, generate) that the batched and server paths share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import numpy as np

from ..devices import DeviceInfo
from ..memory import PeakSampler, release_memory
from ..models.catalog import Architecture
from ..models.modelbin import architecture, read_header, weight_bytes_by_dtype
from ..models.store import ResolvedModel
from ..precision import Resolution, load_with_fallback, resolve

logger = logging.getLogger(__name__)

SYNTHETIC_MARK = "SYNTHETIC"


class WhisperEngine:
    """One loaded model. Create with ``WhisperEngine.load``; ``close()`` frees it."""

    def __init__(self, resolved: ResolvedModel, resolution: Resolution, model, load_s: float, load_rss: int):
        self.resolved = resolved
        self.resolution = resolution
        self.model = model  # faster_whisper.WhisperModel
        self.load_s = load_s
        self.load_rss = load_rss
        self.header = read_header(resolved.path)
        self.arch: Architecture = architecture(self.header)
        self.weight_bytes_by_dtype = weight_bytes_by_dtype(self.header, resolution.compute_type)
        self.weight_bytes = sum(self.weight_bytes_by_dtype.values())
        self._tokenizers: dict = {}
        self._lock = threading.Lock()

    # ---- lifetime -------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        resolved: ResolvedModel,
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int = 0,
        strict: bool = False,
        devices: Iterable[DeviceInfo] | None = None,
        model_dir=None,
        quantize_on_disk: bool = False,
        allow_synthetic: bool = False,
    ) -> WhisperEngine:
        """Load ``resolved`` at the precision that ``(device, precision)`` resolves to.

        With ``model_dir``, a copy stored at that precision (``leanspeech models quantize``)
        is used when present, and ``quantize_on_disk`` creates it on the first load.
        Synthetic models (random weights) are refused unless ``allow_synthetic``.
        """
        from faster_whisper import WhisperModel

        if resolved.synthetic and not allow_synthetic:
            from ..errors import InvalidModelNameError

            raise InvalidModelNameError(
                f"{resolved.path} is a synthetic model (random weights, made by 'leanspeech models synth'): "
                "it measures memory and speed only and is never used to transcribe"
            )
        architecture(read_header(resolved.path))  # a corrupt or foreign model.bin fails here, clearly
        resolution = resolve(device, precision, devices=devices, strict=strict)
        if model_dir is not None:
            resolved = _stored_copy(resolved, resolution.compute_type, model_dir, quantize_on_disk)

        def _load(compute_type: str):
            model = WhisperModel(
                str(resolved.path),  # CTranslate2 rejects pathlib.Path here
                device=resolution.device,
                device_index=resolution.device_index,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
            )
            if resolution.device == "cuda":
                _probe(model)  # some GPUs only reject int8 GEMMs when they first run
            return model

        start = time.perf_counter()
        with PeakSampler(0.02) as sampler:
            model, final = load_with_fallback(resolution, _load, strict=strict, devices=devices)
        load_s = time.perf_counter() - start
        engine = cls(resolved, final, model, load_s, sampler.peak - sampler.start)
        logger.info("Loaded %s from %s (%s) in %.2fs", resolved.name, resolved.path, resolved.source, load_s)
        return engine

    def close(self) -> None:
        """Drop the model and hand its memory back to the OS."""
        model, self.model = self.model, None
        if model is not None:
            try:
                model.model.unload_model()
            except Exception:  # pragma: no cover - older CTranslate2
                pass
            del model
        self._tokenizers.clear()
        release_memory()

    @property
    def closed(self) -> bool:
        return self.model is None

    # ---- facts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def activation_bytes(self) -> int:
        """Bytes per activation value at this compute type."""
        return 2 if self.resolution.compute_type.endswith(("float16", "bfloat16")) else 4

    def tokenizer(self, language: str | None, task: str):
        """The tokenizer for ``language`` and ``task`` (English-only models: always English)."""
        from faster_whisper.tokenizer import Tokenizer

        if not self.multilingual:
            language = "en"
        key = (language, task)
        with self._lock:
            if key not in self._tokenizers:
                self._tokenizers[key] = Tokenizer(
                    self.model.hf_tokenizer, self.multilingual, task=task, language=language or "en"
                )
            return self._tokenizers[key]

    # ---- steps ----------------------------------------------------------------------

    def features(self, window: np.ndarray) -> np.ndarray:
        """Log-mel features of one window, padded or trimmed to 30 s: (n_mels, 3000)."""
        from faster_whisper.audio import pad_or_trim

        return pad_or_trim(self.model.feature_extractor(window)[..., :-1])

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Encoder output of one window, on the host: (n_audio_ctx, d_model) float32.

        Windows are encoded one at a time on purpose: the encoder's self-attention scores
        take heads x 1500 x 1500 floats per window, so encoding a batch multiplies the peak
        by the batch size for little gain on CPU (see ``batched.py``)."""
        import ctranslate2

        out = self.model.model.encode(ctranslate2.StorageView.from_array(features[None]), to_cpu=True)
        return np.array(out, dtype=np.float32)[0]

    def stack(self, encoded: list[np.ndarray]):
        import ctranslate2

        # A host StorageView; CTranslate2 copies it to the model's device when needed.
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(encoded)))

    def detect_language(self, encoded: np.ndarray) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        result = self.model.model.detect_language(self.stack([encoded]))[0]
        token, prob = result[0]
        return token[2:-2], float(prob)


def _stored_copy(resolved: ResolvedModel, compute_type: str, model_dir, create: bool) -> ResolvedModel:
    """The stored ``compute_type`` copy of ``resolved`` if there is one (or ``create``)."""
    from pathlib import Path

    from ..models.quantize import STORABLE, quantize_model, quantized_path

    if compute_type not in STORABLE or resolved.source.startswith("stored"):
        return resolved
    path = quantized_path(Path(model_dir), resolved, compute_type)
    if not (path / "model.bin").is_file():
        if not create or compute_type in ("bfloat16", "int8_bfloat16"):
            return resolved
        try:
            path = quantize_model(resolved, compute_type, Path(model_dir))
        except Exception as exc:  # a failed copy must never stop the load itself
            logger.warning("Could not store a %s copy of %s: %s; loading the original", compute_type, resolved.name, exc)
            return resolved
    logger.info("Using the stored %s copy of %s: %s", compute_type, resolved.name, path)
    return ResolvedModel(resolved.name, path, f"stored-{compute_type}", resolved.entry)


def _probe(model) -> None:
    """Run one tiny decode so that a precision the GPU rejects fails at load time."""
    import ctranslate2

    feats = np.zeros((1, model.model.n_mels, 3000), dtype=np.float32)
    enc = model.model.encode(ctranslate2.StorageView.from_array(feats))
    model.model.generate(enc, [[50258 if model.model.is_multilingual else 50257]], max_length=3)
