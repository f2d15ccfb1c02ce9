"""``leanspeech transcribe FILE...``."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import typer

from leanspeech.atomic import atomic_open
from leanspeech.cli.app import app, fail, settings
from leanspeech.cli.common import make_transcriber, speaker_kwargs, transcribe_options
from leanspeech.errors import LeanspeechError
from leanspeech.stt import Transcriber, Transcription


@dataclass
class Outcome:
    audio_s: float = 0.0
    failures: list[tuple[Path, str]] = field(default_factory=list)


def _check_output_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create output directory {path}: {exc.strerror or exc}", 2)
    if not path.is_dir() or not os.access(path, os.W_OK):
        fail(f"output directory {path} is not writable", 2)
    return path


def _run_files(transcriber: Transcriber, files: list[Path], fmt: str, output_dir: Path | None, quiet: bool,
               outcome: Outcome) -> None:
    """Several files with batching on: their windows are decoded together (``Transcriber.
    transcribe_many``); one file, sequential decoding or split channels: file by file, with a
    progress bar over each file's audio."""
    options = transcriber.options
    if len(files) > 1 and options.batch_size != 0 and options.channels != "split":
        return _run_together(transcriber, files, fmt, output_dir, quiet, outcome)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), transient=True, disable=quiet,
    ) as bar:
        for path in files:
            job = bar.add_task(path.name, total=1.0)

            def progress(fraction: float, job=job) -> None:
                bar.update(job, completed=fraction)

            try:
                _stream_file(transcriber, path, fmt, output_dir, quiet, outcome, progress)
            finally:
                bar.remove_task(job)


def _stream_file(transcriber: Transcriber, path: Path, fmt: str, output_dir: Path | None, quiet: bool,
                 outcome: Outcome, progress) -> None:
    """One file, read piece by piece, its transcript written (or printed) segment by segment as
    each completes (json, which needs the whole, at the end). A file that fails half way is
    reported and its partial output removed."""
    from leanspeech.stt.formats import pieces, to_json

    target = output_dir / f"{path.stem}.{fmt}" if output_dir is not None else None
    languages: dict[str, None] = {}

    def seen(segments):
        for seg in segments:
            if seg.language:
                languages[seg.language] = None
            yield seg

    try:
        stream = transcriber.segments(path, progress=progress)
        with contextlib.ExitStack() as opened:
            # a file: written under a temporary name and renamed when whole (``atomic``)
            out = opened.enter_context(atomic_open(target)) if target is not None else None
            if fmt == "json":
                segments = tuple(seen(stream))
                _emit(to_json(Transcription(segments, stream.info)), out)
            else:
                for piece in pieces(seen(stream), fmt):
                    _emit(piece, out)
        info = stream.info
    except LeanspeechError as exc:
        outcome.failures.append((path, str(exc)))
        return
    except OSError as exc:
        outcome.failures.append((path, f"cannot write {target}: {exc.strerror or exc}"))
        return
    outcome.audio_s += info.duration
    if not quiet:
        typer.echo(f"{path.name}: {_heard(info, list(languages))}", err=True)


def _emit(text: str, out: TextIO | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write(text)
        out.flush()


def _run_together(transcriber: Transcriber, files: list[Path], fmt: str, output_dir: Path | None, quiet: bool,
                  outcome: Outcome) -> None:
    """Each file written as it completes; printed results keep the order of the files."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    held: dict[int, Transcription | None] = {}
    printed = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, disable=quiet) as bar:
        job = bar.add_task("files", total=len(files))
        for index, outcome_of_file in transcriber.transcribe_many(files):
            bar.advance(job)
            result = None
            if isinstance(outcome_of_file, Exception):
                outcome.failures.append((files[index], str(outcome_of_file)))
            else:
                result = outcome_of_file
            if output_dir is not None:
                if result is not None:
                    _write(files[index], result, fmt, output_dir, quiet, outcome)
                continue
            held[index] = result
            while printed in held:  # stdout: in the order the files were given
                ready = held.pop(printed)
                if ready is not None:
                    _write(files[printed], ready, fmt, output_dir, quiet, outcome)
                printed += 1


def _write(path: Path, result: Transcription, fmt: str, output_dir: Path | None, quiet: bool,
           outcome: Outcome) -> None:
    from leanspeech.stt.formats import render, write_transcript

    outcome.audio_s += result.info.duration
    if not quiet:
        typer.echo(f"{path.name}: {_languages(result)}", err=True)
    if output_dir is None:
        typer.echo(render(result, fmt), nl=False)
        return
    target = output_dir / f"{path.stem}.{fmt}"
    try:
        write_transcript(target, result, fmt)
    except OSError as exc:
        outcome.failures.append((path, f"cannot write {target}: {exc.strerror or exc}"))


@app.command()
def transcribe(
    files: list[Path] = typer.Argument(..., help="Audio or video files (anything FFmpeg decodes)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Catalog name or local CTranslate2 model directory."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    precision: str | None = typer.Option(
        None,
        "--precision",
        "-p",
        help="auto, float32, float16, bfloat16, int8, int8_float32, int8_float16, int8_bfloat16, int16.",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", "-b", help="0 = sequential; N = up to N windows decoded together (memory-bounded)."
    ),
    beam_size: int | None = typer.Option(None, "--beam-size", help="1 = greedy."),
    language: str | None = typer.Option(None, "--language", "-l", help="Language code; default detect."),
    task: str = typer.Option("transcribe", help="transcribe or translate (to English)."),
    vad: bool | None = typer.Option(None, "--vad/--no-vad", help="Skip silence with Silero VAD."),
    word_timestamps: bool = typer.Option(False, "--word-timestamps", help="Add per-word times (json)."),
    initial_prompt: str | None = typer.Option(None, "--prompt", "--initial-prompt",
                                              help="Text that primes the vocabulary and style."),
    hotwords: str | None = typer.Option(None, "--hotwords", help="Words to spell as given (product names, jargon)."),
    multilingual: bool | None = typer.Option(None, "--multilingual/--one-language",
                                             help="Detect the language of every segment (a multilingual model)."),
    channels: str = typer.Option("mono", "--channels",
                                 help="mono, or split: each channel of a stereo file alone, segments labelled."),
    fmt: str = typer.Option("txt", "--format", "-f", help="txt, srt, vtt, json or tsv."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Write FILE.<format> here (default: print)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (0 = all)."),
    backend: str = typer.Option(
        "ctranslate2",
        "--backend",
        help="ctranslate2, or torch (transformers; pip install 'leanspeech[torch]'; precisions "
        "auto, float32, float16 (CUDA), bfloat16, int8-dynamic, autocast).",
    ),
    pack_files: bool | None = typer.Option(
        None, "--pack/--no-pack", help="Several files: pack short windows of several files into one 30 s window "
        "(default on: LEANSPEECH_STT__PACK_FILES).",
    ),
    encoder_padding: float | None = typer.Option(
        None, "--encoder-padding", min=0, max=30,
        help="Encode a short window as its audio plus this many seconds (rounded up to 5 s), not Whisper's 30 s.",
    ),
    diarize: bool = typer.Option(False, "--diarize", help="Label segments with speakers (A, B, ...); needs "
                                 "leanspeech[diarize]."),
    speakers: int | None = typer.Option(None, "--speakers", help="With --diarize: exactly this many speakers."),
    min_speakers: int | None = typer.Option(None, "--min-speakers", help="With --diarize: at least this many."),
    max_speakers: int | None = typer.Option(None, "--max-speakers", help="With --diarize: at most this many."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
):
    """Transcribe audio files. Bad files are reported at the end; the others go on."""
    from leanspeech.logs import setup_logging
    from leanspeech.memory import format_bytes, peak_rss_lifetime
    from leanspeech.stt.formats import FORMATS

    cfg = settings()
    setup_logging("warning" if quiet else cfg.log_level)
    # Everything that can be checked before loading a model is checked first.
    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})", 2)
    try:
        options = transcribe_options(
            cfg,
            beam_size=beam_size,
            language=language,
            task=task,
            vad=vad,
            word_timestamps=word_timestamps,
            initial_prompt=initial_prompt,
            batch_size=batch_size,
            multilingual=multilingual,
            hotwords=hotwords,
            channels=channels,
            pack_files=pack_files,
        )
    except LeanspeechError as exc:
        fail(str(exc), 2)
    who = speaker_kwargs(diarize, speakers, min_speakers, max_speakers)
    if who and channels == "split":
        fail("--channels split labels each channel as a speaker; it cannot be combined with --diarize", 2)
    if output_dir is not None:
        _check_output_dir(output_dir)
    outcome = Outcome()
    for path in files:
        if not path.is_file():
            outcome.failures.append(
                (path, f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
            )
    todo = [p for p in files if p.is_file()]
    transcriber = make_transcriber(
        cfg, options, model=model, device=device, precision=precision, threads=threads, backend=backend,
        encoder_padding=encoder_padding, speakers=who,
    )
    try:
        transcriber.engine.check_options(options)  # e.g. German or translation on an English-only model
    except LeanspeechError as exc:
        transcriber.close()
        fail(str(exc), 2)
    if not todo:
        transcriber.close()
        _report_failures(outcome)
    started = time.perf_counter()
    with transcriber:
        _run_files(transcriber, todo, fmt, output_dir, quiet, outcome)
    wall_s = time.perf_counter() - started
    if not quiet:
        res = transcriber.resolution
        rtf = wall_s / outcome.audio_s if outcome.audio_s else 0.0
        typer.echo(
            f"{len(files) - len(outcome.failures)}/{len(files)} files, {outcome.audio_s:.1f} s audio in {wall_s:.1f} s "
            f"(RTF {rtf:.3f}, {1 / rtf if rtf else 0:.1f}x real time), peak RSS {format_bytes(peak_rss_lifetime())}, "
            f"model {transcriber.engine.name} on {res.device_id} at {res.compute_type} "
            f"(requested {res.requested_precision})",
            err=True,
        )
    _report_failures(outcome)


def _languages(result: Transcription) -> str:
    """What was heard: the detected language (and its probability), or every segment's."""
    return _heard(result.info, list(dict.fromkeys(s.language for s in result.segments if s.language)))


def _heard(info, per_segment: list[str]) -> str:
    """The detected language (and its probability), or every segment's where they differ."""
    if len(per_segment) > 1:
        return f"languages {', '.join(per_segment)} (per segment)"
    return f"language {info.language} (probability {info.language_probability:.2f})"


def _report_failures(outcome: Outcome) -> None:
    for path, message in outcome.failures:
        typer.echo(f"error: {message}" if str(path) in message else f"error: {path}: {message}", err=True)
    if outcome.failures:
        raise typer.Exit(1)
