"""``leanspeech batch INPUT --out DIR``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from leanspeech.cli.app import app, fail, settings
from leanspeech.errors import LeanspeechError


@app.command()
def batch(
    source: str = typer.Argument(..., metavar="INPUT", help="A directory (searched recursively), a glob in quotes, or "
                                 "a manifest (.txt/.lst/.list/.manifest: one path a line)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where results go: OUT/<path relative to INPUT>.<format>."),
    formats: str = typer.Option("json", "--format", "-f", help="Comma-separated: json, srt, vtt, txt, tsv."),
    model: str | None = typer.Option(None, "--model", "-m", help="Catalog name or local CTranslate2 model directory."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    precision: str | None = typer.Option(None, "--precision", "-p", help="Compute type (auto, int8, float16, ...)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b",
                                          help="Windows decoded together, across files (0 = sequential)."),
    beam_size: int | None = typer.Option(None, "--beam-size", help="1 = greedy."),
    language: str | None = typer.Option(None, "--language", "-l", help="Language code; default detect per file."),
    task: str = typer.Option("transcribe", help="transcribe or translate (to English)."),
    pack_files: bool | None = typer.Option(None, "--pack/--no-pack", help="Pack short windows of several files into "
                                           "one 30 s window (default on: LEANSPEECH_STT__PACK_FILES)."),
    encoder_padding: float | None = typer.Option(None, "--encoder-padding", min=0, max=30,
                                                 help="Encode short windows as audio + this many seconds (opt-in)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (0 = all; per worker with --ray)."),
    use_ray: bool = typer.Option(False, "--ray/--no-ray", help="Run on Ray Data: an actor pool of workers, each "
                                 "with its own model (pip install 'leanspeech[ray]')."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="With --ray: worker actors (one model each)."),
    address: str | None = typer.Option(None, "--address", help="With --ray: the cluster to join (auto, or "
                                       "HOST:6379); default a local one."),
    worker_cpus: float = typer.Option(1.0, "--worker-cpus", help="With --ray: CPUs reserved per worker."),
    worker_gpus: float = typer.Option(0.0, "--worker-gpus", help="With --ray: GPUs reserved per worker."),
    diarize: bool = typer.Option(False, "--diarize", help="Label segments with speakers (A, B, ...); needs "
                                 "leanspeech[diarize]. Files then go one by one."),
    speakers: int | None = typer.Option(None, "--speakers", help="With --diarize: exactly this many speakers."),
    min_speakers: int | None = typer.Option(None, "--min-speakers", help="With --diarize: at least this many."),
    max_speakers: int | None = typer.Option(None, "--max-speakers", help="With --diarize: at most this many."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
):
    """Transcribe many files into OUT, each written as it finishes. A rerun skips what is
    done; bad files are listed at the end (and in OUT/failed.json) and do not stop the job."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from leanspeech.batch.job import collect, order_formats, plan_items, run_batch, write_failures
    from leanspeech.cli.common import make_transcriber, speaker_kwargs, transcribe_options, transcriber_kwargs
    from leanspeech.logs import setup_logging
    from leanspeech.memory import format_bytes, peak_rss_lifetime

    cfg = settings()
    setup_logging("warning" if quiet else cfg.log_level)
    try:
        wanted = order_formats(formats.split(","))
        files, base = collect(source)
        options = transcribe_options(cfg, beam_size=beam_size, language=language, task=task, vad=None,
                                     word_timestamps=False, initial_prompt=None, batch_size=batch_size,
                                     multilingual=None, hotwords=None, channels="mono", pack_files=pack_files)
    except LeanspeechError as exc:
        fail(str(exc), 2)
    if not files:
        fail(f"{source}: no audio files found", 2)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}", 2)
    items = plan_items(files, base, out)
    choices: dict[str, Any] = dict(model=model, device=device, precision=precision, threads=threads,
                                   backend="ctranslate2", encoder_padding=encoder_padding,
                                   speakers=speaker_kwargs(diarize, speakers, min_speakers, max_speakers))
    # every bad choice (model, precision, language for the model) fails here, before any worker starts
    transcriber = make_transcriber(cfg, options, **choices)
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True, disable=quiet) as bar:
        job = bar.add_task("files", total=len(items))

        def advance(item, status):
            bar.advance(job)

        if use_ray:
            from leanspeech.batch.on_ray import run_ray_batch

            transcriber.close()  # the workers load their own
            kwargs = transcriber_kwargs(cfg, options, **choices)
            try:
                summary = run_ray_batch(items, wanted, kwargs, workers=workers, cpus_per_worker=worker_cpus,
                                        gpus_per_worker=worker_gpus, address=address, on_done=advance)
            except LeanspeechError as exc:
                fail(str(exc), 2)
        else:
            with transcriber:
                summary = run_batch(transcriber, items, wanted, on_done=advance)
    wall = time.perf_counter() - started
    write_failures(out, summary.failed)
    if not quiet:
        typer.echo(f"{len(summary.written)} written, {len(summary.skipped)} already done, {len(summary.failed)} "
                   f"failed, of {len(items)} files in {wall:.1f} s ({60 * len(summary.written) / max(wall, 1e-9):.0f} "
                   f"files/min); peak RSS {format_bytes(peak_rss_lifetime())}", err=True)
    for path, error in summary.failed:
        typer.echo(f"failed: {path}: {error}" if str(path) not in error else f"failed: {error}", err=True)
    if summary.failed:
        raise typer.Exit(1)
