"""The model manager's loader specs, built from the settings: how the runtime loads, sizes
and describes a speech-to-text model (an engine and its batcher) and a voice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leanspeech.config import Settings
from leanspeech.memory import parse_bytes
from leanspeech.models.catalog import CATALOG, Architecture
from leanspeech.runtime.manager import LoaderSpec
from leanspeech.runtime.stt_service import ServedModel
from leanspeech.tts.synthesizer import Synthesizer

OnBatch = Callable[[int, float], None]


def decode_batch(settings: Settings, arch: Architecture, compute_type: str) -> int:
    """The batcher's most windows per decode: ``MAX_BATCH`` cut to ``BATCH_MEMORY``, 1 with
    batching off."""
    from leanspeech.models.sizing import batch_limit

    if not settings.server.batching:
        return 1
    return batch_limit(arch, batch_size=settings.server.max_batch, beam_size=settings.stt.beam_size,
                       batch_memory=parse_bytes(settings.stt.batch_memory), compute_type=compute_type)


def downloads_allowed(settings: Settings) -> bool:
    """The server downloads a model only when its settings allow it and it is not offline."""
    return settings.server.allow_downloads and not settings.is_offline


def stt_loader(settings: Settings, on_batch: OnBatch | None = None) -> LoaderSpec[ServedModel]:
    s, srv = settings.stt, settings.server

    def load(name: str) -> ServedModel:
        from leanspeech.models.store import resolve_model
        from leanspeech.stt.backends import load_engine
        from leanspeech.stt.batcher import Batcher

        resolved = resolve_model(name, model_dir=settings.model_dir, offline=not downloads_allowed(settings),
                                 allow_paths=False, why_offline=None if settings.is_offline else
                                 "downloads are off (LEANSPEECH_SERVER__ALLOW_DOWNLOADS=true allows them)")
        engine = load_engine(resolved, device=s.device, precision=s.precision, cpu_threads=s.cpu_threads,
                             strict=settings.strict_precision, model_dir=settings.model_dir,
                             quantize_on_disk=s.quantize_on_disk)
        if hasattr(engine, "encoder_pad_s"):  # CTranslate2's encoder takes a shorter input
            engine.encoder_pad_s = s.encoder_padding
        batcher = Batcher(engine, window_ms=srv.batch_window_ms,
                          max_batch=decode_batch(settings, engine.arch, engine.resolution.compute_type),
                          max_queue=srv.max_queue, enabled=srv.batching, pack=srv.pack_requests, on_batch=on_batch)
        return ServedModel(engine, batcher)

    def candidates() -> list[str]:
        from leanspeech.models.store import local_sources

        return [n for n, e in CATALOG.items() if local_sources(e, settings.model_dir)]

    def estimate(name: str) -> int:
        from leanspeech.models.sizing import estimate_bytes
        from leanspeech.models.store import local_sources
        from leanspeech.precision import resolve

        entry = CATALOG[name]
        compute_type = resolve(s.device, s.precision).compute_type
        found = local_sources(entry, settings.model_dir)
        return estimate_bytes(entry.arch, compute_type, beam_size=s.beam_size,
                              batch=decode_batch(settings, entry.arch, compute_type),
                              model_path=found[0][1] if found else None)

    def describe(served: ServedModel) -> dict[str, Any]:
        e = served.engine
        extra = {"weight_bytes_by_dtype": getattr(e, "weight_bytes_by_dtype", None)}
        return {**e.resolution.as_dict(), "backend": e.backend, "weight_bytes": e.weight_bytes, **extra,
                "source": e.resolved.source, "path": str(e.resolved.path), "load_s": round(e.load_s, 3),
                "queue_depth": served.batcher.depth, "max_batch": served.batcher.max_batch,
                "pack_requests": served.batcher.packing, "packed_windows": served.batcher.packed,
                "packed_sent_back": served.batcher.sent_back,
                # seconds of padding after a short window's audio (None: Whisper's 30 s input)
                "encoder_padding_s": getattr(e, "encoder_pad_s", None)}

    return LoaderSpec(load=load, estimate=estimate, ttl=s.model_ttl, describe=describe, candidates=candidates)


def tts_loader(settings: Settings) -> LoaderSpec[Synthesizer]:
    from leanspeech.runtime.tts_service import split_voice_key
    from leanspeech.tts.synthesizer import resolve_tts_precision
    from leanspeech.tts.variants import estimated_bytes
    from leanspeech.tts.voices import resolve_voice

    t = settings.tts
    budget = parse_bytes(settings.memory.budget)

    def fits_for(name: str) -> Callable[[str], bool] | None:
        if budget is None:
            return None
        return lambda precision: estimated_bytes(settings.model_dir, resolve_voice(name), precision) <= budget

    # a name is a voice, or voice@precision for a request that asked for a variant
    def load(key: str) -> Synthesizer:
        name, precision = split_voice_key(key)
        return Synthesizer(name, precision=precision or t.precision, model_dir=settings.model_dir,
                           max_chunk_length=t.max_chunk_length, max_total_length=t.max_total_length,
                           fits=fits_for(name))

    def estimate(key: str) -> int:
        name, asked = split_voice_key(key)
        precision = resolve_tts_precision(asked or t.precision, fits=fits_for(name)).precision
        return estimated_bytes(settings.model_dir, resolve_voice(name), precision)

    def describe(synth: Synthesizer) -> dict[str, Any]:
        return {**synth.resolution.as_dict(), "voice": synth.name, "disk_bytes": synth.disk_bytes,
                "sample_rate": synth.sample_rate, "path": str(synth.model_path)}

    return LoaderSpec(load=load, estimate=estimate, ttl=t.model_ttl, describe=describe)
