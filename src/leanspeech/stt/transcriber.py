"""``Transcriber``: the public speech-to-text API of the library."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..audio import AudioInput, SAMPLE_RATE, decode_audio
from ..memory import PeakSampler
from ..models.store import ResolvedModel, resolve_model
from .batched import transcribe_batched
from .engine import WhisperEngine
from .options import TranscribeOptions
from .result import Segment, Timings, Transcription, TranscriptionInfo, segment_from_fw

logger = logging.getLogger(__name__)

DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class Transcriber:
    """Speech-to-text with a Whisper model on CTranslate2 (or, with ``backend="torch"``, on
    PyTorch/transformers with the same weights: ``pip install 'leanspeech[torch]'``).

    >>> t = Transcriber("tiny.en", precision="int8")
    >>> t.transcribe("speech.flac").text

    ``model`` is a catalog name (``leanspeech models list``) or a local CTranslate2 model
    directory. Every keyword of ``TranscribeOptions`` can be given here (the defaults of
    this transcriber) or per call to ``transcribe``.
    """

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        device: str = "auto",
        precision: str = "auto",
        cpu_threads: int = 0,
        strict_precision: bool = False,
        model_dir: str | Path | None = None,
        offline: bool = False,
        quantize_on_disk: bool = False,
        engine: WhisperEngine | None = None,
        backend: str = "ctranslate2",
        **options,
    ):
        from .torch_engine import BACKENDS, TorchWhisperEngine

        if backend not in BACKENDS:
            from ..errors import InvalidOptionError

            raise InvalidOptionError(f"unknown backend {backend!r} (valid: {', '.join(BACKENDS)})", "backend")
        self.options = TranscribeOptions(**options)
        if engine is None:
            resolved: ResolvedModel = resolve_model(
                model, model_dir=Path(model_dir) if model_dir else None, offline=offline
            )
        if engine is None and backend == "torch":
            engine = TorchWhisperEngine.load(
                resolved, device=device, precision=precision, strict=strict_precision,
                model_dir=Path(model_dir) if model_dir else None, cpu_threads=cpu_threads,
            )
        elif engine is None:
            engine = WhisperEngine.load(
                resolved, device=device, precision=precision, cpu_threads=cpu_threads, strict=strict_precision,
                model_dir=Path(model_dir) if model_dir else None, quantize_on_disk=quantize_on_disk,
            )
        self.engine = engine

    @property
    def resolution(self):
        return self.engine.resolution

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transcribe(
        self,
        audio: AudioInput,
        *,
        progress: Callable[[float], None] | None = None,
        **overrides,
    ) -> Transcription:
        """Transcribe a file path, bytes, a file object or a 16 kHz mono float32 array.

        ``progress`` is called with the fraction of the audio done (0..1).
        """
        options = self.options.with_(**overrides) if overrides else self.options
        samples = decode_audio(audio)
        duration = samples.shape[0] / SAMPLE_RATE
        start = time.perf_counter()
        with PeakSampler() as sampler:
            if getattr(self.engine, "backend", "ctranslate2") == "torch":
                from .torch_engine import transcribe_torch

                segments, language, prob, used, speech_s = transcribe_torch(self.engine, samples, options, progress)
            elif options.batch_size == 0:
                segments, language, prob, speech_s = self._sequential(samples, options, duration, progress)
                used = 0
            else:
                segments, language, prob, used, speech_s = transcribe_batched(self.engine, samples, options, progress)
        decode_s = time.perf_counter() - start
        res = self.engine.resolution
        info = TranscriptionInfo(
            duration=duration,
            duration_after_vad=speech_s,
            language=language,
            language_probability=prob,
            task=options.task,
            model=self.engine.name,
            device=res.device_id,
            precision=res.compute_type,
            requested_precision=res.requested_precision,
            precision_reason=res.reason,
            batch_size=used,
            timings=Timings(load_s=self.engine.load_s, decode_s=decode_s, audio_s=duration),
            peak_rss=sampler.peak,
        )
        return Transcription(tuple(segments), info)

    def _sequential(self, samples, options: TranscribeOptions, duration: float, progress):
        temps = tuple(t for t in DEFAULT_TEMPERATURES if t >= options.temperature)
        generator, info = self.engine.model.transcribe(
            samples,
            beam_size=options.beam_size,
            language=options.language if self.engine.multilingual else "en",
            task=options.task,
            vad_filter=options.vad,
            vad_parameters=options.vad_parameters or None,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt,
            temperature=temps,
            no_speech_threshold=options.no_speech_threshold,
            log_prob_threshold=options.log_prob_threshold,
            compression_ratio_threshold=options.compression_ratio_threshold,
            without_timestamps=options.without_timestamps,
        )
        segments: list[Segment] = []
        for i, seg in enumerate(generator):
            segments.append(segment_from_fw(seg, i + 1))
            if progress is not None and duration > 0:
                progress(min(1.0, seg.end / duration))
        return segments, info.language, float(info.language_probability), float(info.duration_after_vad)
