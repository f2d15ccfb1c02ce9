"""``leanspeech transcribe FILE...``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from ..errors import LeanspeechError
from .app import app, fail, settings


def _check_output_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create output directory {path}: {exc.strerror or exc}", 2)
    if not path.is_dir() or not os.access(path, os.W_OK):
        fail(f"output directory {path} is not writable", 2)
    return path


@app.command()
def transcribe(
    files: list[Path] = typer.Argument(..., help="Audio or video files (anything FFmpeg decodes)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Catalog name or local CTranslate2 model directory."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    precision: str | None = typer.Option(None, "--precision", "-p", help="auto, float32, float16, bfloat16, int8, int8_float32, int8_float16, int8_bfloat16, int16."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="0 = sequential; N = up to N windows decoded together (memory-bounded)."),
    beam_size: int | None = typer.Option(None, "--beam-size", help="1 = greedy."),
    language: str | None = typer.Option(None, "--language", "-l", help="Language code; default detect."),
    task: str = typer.Option("transcribe", help="transcribe or translate (to English)."),
    vad: bool | None = typer.Option(None, "--vad/--no-vad", help="Skip silence with Silero VAD."),
    word_timestamps: bool = typer.Option(False, "--word-timestamps", help="Add per-word times (json)."),
    initial_prompt: str | None = typer.Option(None, "--initial-prompt", help="Text that primes the vocabulary."),
    fmt: str = typer.Option("txt", "--format", "-f", help="txt, srt, vtt, json or tsv."),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Write FILE.<format> here (default: print)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (0 = all)."),
    backend: str = typer.Option("ctranslate2", "--backend",
                                help="ctranslate2, or torch (transformers; pip install 'leanspeech[torch]'; precisions "
                                     "auto, float32, float16 (CUDA), bfloat16, int8-dynamic, autocast)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
):
    """Transcribe audio files. Bad files are reported at the end; the others go on."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..logs import setup_logging
    from ..memory import format_bytes, peak_rss_lifetime
    from ..models.store import resolve_model
    from ..precision import check_precision
    from ..stt import Transcriber
    from ..stt.formats import FORMATS, render
    from ..stt.options import TranscribeOptions

    cfg = settings()
    setup_logging("warning" if quiet else cfg.log_level)
    s = cfg.stt
    # Everything that can be checked before loading a model is checked first.
    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})", 2)
    try:
        if backend not in ("ctranslate2", "torch"):
            fail(f"unknown backend {backend!r} (valid: ctranslate2, torch)", 2)
        if backend == "torch":
            from ..stt.torch_engine import TORCH_PRECISIONS, import_torch

            import_torch()  # the install hint comes before anything loads
            if (precision or "auto") not in (*TORCH_PRECISIONS, "int8", "int8_float32"):
                from ..errors import UnknownPrecisionError

                raise UnknownPrecisionError(precision, TORCH_PRECISIONS)
        else:
            check_precision(precision or s.precision)
        from ..memory import parse_bytes

        options = TranscribeOptions(
            beam_size=beam_size if beam_size is not None else s.beam_size,
            language=language if language is not None else s.language,
            task=task,
            vad=vad if vad is not None else s.vad,
            word_timestamps=word_timestamps,
            initial_prompt=initial_prompt,
            batch_size=batch_size if batch_size is not None else s.batch_size,
            batch_memory=parse_bytes(s.batch_memory),
        )
        resolved = resolve_model(model or s.model, model_dir=cfg.model_dir, offline=cfg.is_offline)
    except LeanspeechError as exc:
        fail(str(exc), 2)
    if output_dir is not None:
        _check_output_dir(output_dir)
    failures: list[tuple[Path, str]] = []
    for path in files:
        if not path.is_file():
            failures.append((path, f"{path}: no such file" if not path.exists() else f"{path}: not a regular file"))
    todo = [p for p in files if p.is_file()]
    if not todo:
        for _, message in failures:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1)

    try:
        from ..stt.engine import WhisperEngine
        from ..stt.torch_engine import TorchWhisperEngine

        if backend == "torch":
            engine = TorchWhisperEngine.load(
                resolved, device=device or s.device, precision=precision or "auto", strict=cfg.strict_precision,
                model_dir=cfg.model_dir, cpu_threads=threads if threads is not None else s.cpu_threads,
            )
        else:
            engine = WhisperEngine.load(
                resolved,
                device=device or s.device,
                precision=precision or s.precision,
                cpu_threads=threads if threads is not None else s.cpu_threads,
                strict=cfg.strict_precision,
                model_dir=cfg.model_dir,
                quantize_on_disk=s.quantize_on_disk,
            )
    except LeanspeechError as exc:
        fail(str(exc))
    except Exception as exc:  # CTranslate2's own load errors
        fail(f"could not load model {resolved.name!r} from {resolved.path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    transcriber = Transcriber(engine=engine, **options.as_dict())

    audio_s = wall_s = 0.0
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s audio"),
        TimeRemainingColumn(), transient=True, disable=quiet,
    ) as bar:
        for path in todo:
            job = bar.add_task(path.name, total=1.0)
            try:
                from ..audio import SAMPLE_RATE, decode_audio

                samples = decode_audio(path)
                seconds = samples.shape[0] / SAMPLE_RATE
                bar.update(job, total=seconds)

                def progress(fraction: float, job=job, seconds=seconds) -> None:
                    bar.update(job, completed=fraction * seconds)

                result = transcriber.transcribe(samples, progress=progress)
            except LeanspeechError as exc:
                failures.append((path, str(exc)))
                bar.remove_task(job)
                continue
            bar.remove_task(job)
            audio_s += result.info.duration
            text = render(result, fmt)
            if output_dir is None:
                typer.echo(text, nl=False)
            else:
                target = output_dir / f"{path.stem}.{fmt}"
                try:
                    target.write_text(text, encoding="utf-8")
                except OSError as exc:
                    failures.append((path, f"cannot write {target}: {exc.strerror or exc}"))
    wall_s = time.perf_counter() - started
    transcriber.close()
    if not quiet:
        res = engine.resolution
        rtf = wall_s / audio_s if audio_s else 0.0
        typer.echo(
            f"{len(files) - len(failures)}/{len(files)} files, {audio_s:.1f} s audio in {wall_s:.1f} s "
            f"(RTF {rtf:.3f}, {1 / rtf if rtf else 0:.1f}x real time), peak RSS {format_bytes(peak_rss_lifetime())}, "
            f"model {resolved.name} on {res.device_id} at {res.compute_type} (requested {res.requested_precision})",
            err=True,
        )
    for path, message in failures:
        typer.echo(f"error: {message}" if str(path) in message else f"error: {path}: {message}", err=True)
    if failures:
        raise typer.Exit(1)
