"""What the server holds: settings, the model manager, metrics and the speech service."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..config import Settings
from ..manager import ModelManager, ModelType
from ..memory import parse_bytes
from ..stt.service import SpeechService
from .metrics import Metrics
from .whisperlive_ws import LiveHub

WHISPER_ALIASES = ("whisper-1",)  # what OpenAI clients send; served by the default model


@dataclass
class ServerState:
    settings: Settings
    manager: ModelManager
    metrics: Metrics
    speech: SpeechService
    live: LiveHub
    started_at: float = field(default_factory=time.time)
    ready: bool = False
    load_error: str | None = None

    def tts_voice(self, requested: str | None) -> str:
        """Map the request's voice to a catalog voice; OpenAI's voice names map to the default."""
        from ..tts.voices import OPENAI_VOICES, VOICES, UnknownVoiceError

        name = (requested or "").strip() or self.settings.tts.voice
        if name in OPENAI_VOICES:
            return self.settings.tts.voice
        if name not in VOICES:
            raise UnknownVoiceError(f"unknown voice {name!r} (known: {', '.join([*VOICES, *OPENAI_VOICES])})")
        return name

    def stt_name(self, requested: str | None) -> str:
        """Map the request's model to a catalog name; rejects paths and unknown names."""
        from ..errors import UnknownModelError
        from ..models.catalog import CATALOG
        from ..models.store import check_model_name

        name = (requested or "").strip() or self.settings.stt.model
        if name in WHISPER_ALIASES:
            return self.settings.stt.model
        check_model_name(name)
        if name not in CATALOG:
            raise UnknownModelError(name, (*CATALOG, *WHISPER_ALIASES))
        return name


def stt_model_type(settings: Settings, metrics: Metrics) -> ModelType:
    from ..models.catalog import CATALOG
    from ..models.sizing import estimate_bytes
    from ..models.store import local_sources, resolve_model
    from ..precision import resolve
    from ..stt.batcher import Batcher
    from ..stt.engine import WhisperEngine
    from ..stt.service import ServedModel

    s, srv = settings.stt, settings.server

    def decode_batch_for(arch, compute_type: str) -> int:
        """The server's decode batch, cut to the same memory bound as the library's."""
        from ..stt.batched import batch_limit
        from ..stt.options import TranscribeOptions

        if not srv.batching:
            return 1
        act = 2 if compute_type.endswith(("float16", "bfloat16")) else 4
        opts = TranscribeOptions(beam_size=s.beam_size, batch_size=srv.max_batch, batch_memory=parse_bytes(s.batch_memory))
        return batch_limit(arch, opts, act)

    def load(name: str) -> ServedModel:
        resolved = resolve_model(name, model_dir=settings.model_dir, offline=settings.is_offline, allow_paths=False)
        engine = WhisperEngine.load(resolved, device=s.device, precision=s.precision, cpu_threads=s.cpu_threads,
                                    strict=settings.strict_precision, model_dir=settings.model_dir,
                                    quantize_on_disk=s.quantize_on_disk)
        batcher = Batcher(engine, window_ms=srv.batch_window_ms,
                          max_batch=decode_batch_for(engine.arch, engine.resolution.compute_type),
                          max_queue=srv.max_queue, enabled=srv.batching, on_batch=metrics.observe_batch)
        return ServedModel(engine, batcher)

    load.candidates = lambda: [n for n, e in CATALOG.items() if local_sources(e, settings.model_dir)]  # type: ignore[attr-defined]

    def estimate(name: str) -> int:
        entry = CATALOG[name]
        compute_type = resolve(s.device, s.precision).compute_type
        found = local_sources(entry, settings.model_dir)
        return estimate_bytes(entry.arch, compute_type, beam_size=s.beam_size,
                              batch=decode_batch_for(entry.arch, compute_type), model_path=found[0][1] if found else None)

    def describe(served: ServedModel) -> dict:
        e = served.engine
        return {**e.resolution.as_dict(), "weight_bytes": e.weight_bytes, "weight_bytes_by_dtype": e.weight_bytes_by_dtype,
                "source": e.resolved.source,
                "path": str(e.resolved.path), "load_s": round(e.load_s, 3), "queue_depth": served.batcher.depth,
                "max_batch": served.batcher.max_batch}

    return ModelType(load=load, estimate=estimate, ttl=s.model_ttl, describe=describe)


def tts_model_type(settings: Settings, budget: int | None) -> ModelType:
    from ..tts.synthesizer import Synthesizer, resolve_tts_precision
    from ..tts.variants import variant_path
    from ..tts.voices import resolve_voice

    t = settings.tts

    def size(name: str, precision: str) -> int:
        path = variant_path(settings.model_dir, resolve_voice(name), precision)
        if path.is_file():
            return _voice_estimate(path)
        # not made yet: scale the original by the measured size ratios (float16 2.0x, int8 3.4x)
        original = _voice_estimate(variant_path(settings.model_dir, resolve_voice(name), "float32"))
        return int(original / {"float32": 1.0, "float16": 2.0, "int8": 3.4}[precision])

    def fits_for(name: str):
        if budget is None:
            return None
        return lambda precision: size(name, precision) <= budget

    def load(name: str):
        return Synthesizer(name, precision=t.precision, model_dir=settings.model_dir,
                           max_chunk_length=t.max_chunk_length, max_total_length=t.max_total_length,
                           fits=fits_for(name))

    def estimate(name: str) -> int:
        return size(name, resolve_tts_precision(t.precision, fits=fits_for(name)).precision)

    def describe(synth) -> dict:
        return {**synth.resolution.as_dict(), "voice": synth.name, "disk_bytes": synth.disk_bytes,
                "sample_rate": synth.sample_rate, "path": str(synth.model_path)}

    return ModelType(load=load, estimate=estimate, ttl=t.model_ttl, describe=describe)


def _voice_estimate(onnx_path) -> int:
    """ONNX Runtime holds the weights once more than the file, plus its arena: ~1.6x the file
    (float32 en_US-joe-medium: 63 MB file, ~100 MB resident after the first synthesis)."""
    return int(onnx_path.stat().st_size * 1.6)


def build_state(settings: Settings) -> ServerState:
    metrics = Metrics()
    budget = parse_bytes(settings.memory.budget)
    manager = ModelManager({"stt": stt_model_type(settings, metrics), "tts": tts_model_type(settings, budget)},
                           budget=budget,
                           cleanup_interval=settings.memory.cleanup_interval,
                           budget_label=settings.memory.budget)
    metrics.manager = manager
    live = LiveHub(settings.live.max_clients, settings.live.max_connection_time)
    return ServerState(settings, manager, metrics, SpeechService(manager, on_audio=metrics.observe_audio), live)
