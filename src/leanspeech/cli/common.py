"""What ``transcribe`` and ``batch`` share: their options read from the settings and the
command line, and the transcriber built from them."""

from __future__ import annotations

from leanspeech.cli.app import fail
from leanspeech.config import Settings
from leanspeech.errors import LeanspeechError
from leanspeech.stt import Transcriber
from leanspeech.stt.options import TranscribeOptions
from leanspeech.tuning.malloc import mmap_threshold


def transcribe_options(cfg: Settings, *, beam_size: int | None, language: str | None, task: str, vad: bool | None,
             word_timestamps: bool, initial_prompt: str | None, batch_size: int | None, multilingual: bool | None,
             hotwords: str | None, channels: str, pack_files: bool | None = None) -> TranscribeOptions:
    from leanspeech.memory import parse_bytes

    s = cfg.stt
    return TranscribeOptions(
        beam_size=beam_size if beam_size is not None else s.beam_size,
        language=language if language is not None else s.language,
        task=task,
        vad=vad if vad is not None else s.vad,
        word_timestamps=word_timestamps,
        initial_prompt=initial_prompt,
        batch_size=batch_size if batch_size is not None else s.batch_size,
        batch_memory=parse_bytes(s.batch_memory),
        multilingual=multilingual if multilingual is not None else s.multilingual,
        hotwords=hotwords or s.hotwords,
        channels=channels,
        pack_files=pack_files if pack_files is not None else s.pack_files,
        block_seconds=s.block_seconds,
    )


#: Errors about what was asked for (exit 2), as against a model that fails to load (exit 1).
USAGE_ERRORS = ("invalid_option", "invalid_precision", "invalid_device", "model_not_found", "invalid_model_name",
                "model_not_available", "missing_dependency", "precision_unsupported")


def speaker_kwargs(diarize: bool, speakers: int | None, min_speakers: int | None, max_speakers: int | None
                   ) -> dict:
    """The ``Transcriber`` keywords of ``--diarize [--speakers N | --min-speakers/--max-speakers]``,
    checked here (exit 2) before anything loads."""
    from leanspeech.diarize.cluster import SpeakerBounds

    if not diarize:
        if any(v is not None for v in (speakers, min_speakers, max_speakers)):
            fail("--speakers, --min-speakers and --max-speakers need --diarize", 2)
        return {}
    try:
        SpeakerBounds(num=speakers, min=min_speakers, max=max_speakers)
    except LeanspeechError as exc:
        import re

        fail(re.sub(r"\b(min|max)_speakers", r"--\1-speakers", str(exc)).replace("num_speakers", "--speakers"), 2)
    return {"diarize": True, "num_speakers": speakers, "min_speakers": min_speakers, "max_speakers": max_speakers}


def transcriber_kwargs(cfg: Settings, options: TranscribeOptions, *, model: str | None, device: str | None,
                       precision: str | None, threads: int | None, backend: str,
                       encoder_padding: float | None = None, speakers: dict | None = None) -> dict:
    """What ``Transcriber(**kwargs)`` needs for these settings and command-line choices (a
    batch job's Ray workers build theirs from it)."""
    s = cfg.stt
    return dict(
        model=model or s.model, device=device or s.device,
        precision=precision or (s.precision if backend == "ctranslate2" else "auto"),
        cpu_threads=threads if threads is not None else s.cpu_threads, strict_precision=cfg.strict_precision,
        model_dir=cfg.model_dir, offline=cfg.is_offline, quantize_on_disk=s.quantize_on_disk, backend=backend,
        encoder_padding=encoder_padding if encoder_padding is not None else
        (s.encoder_padding if backend == "ctranslate2" else None),
        malloc_arenas=cfg.memory.malloc_arenas,
        malloc_mmap_threshold=mmap_threshold(cfg.memory.malloc_mmap_threshold, server=False),
        blas_threads=s.blas_threads,
        # the options' encoder_padding (a per-call override, None here) would collide with
        # the Transcriber's own, which sets the model's
        **{k: v for k, v in options.as_dict().items() if k != "encoder_padding"},
        **(speakers or {}),
    )


def make_transcriber(cfg: Settings, options: TranscribeOptions, *, model: str | None, device: str | None,
                 precision: str | None, threads: int | None, backend: str,
                 encoder_padding: float | None = None, speakers: dict | None = None) -> Transcriber:
    """The transcriber, or a one-line error: a bad backend, precision or model exits 2 before
    anything loads; a model that fails to load exits 1."""
    kwargs = transcriber_kwargs(cfg, options, model=model, device=device, precision=precision, threads=threads,
                                backend=backend, encoder_padding=encoder_padding, speakers=speakers)
    name = kwargs["model"]
    try:
        return Transcriber(**kwargs)
    except LeanspeechError as exc:
        fail(str(exc), 2 if exc.kind in USAGE_ERRORS else 1)
    except Exception as exc:  # CTranslate2's own load errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"could not load model {name!r}: {first}")
