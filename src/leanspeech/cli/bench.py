"""``leanspeech bench``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from leanspeech.cli.app import app, fail, settings
from leanspeech.errors import LeanspeechError
from leanspeech.measure import runner

ANCHORS = ("faster-whisper", "openai-whisper")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass
class BenchPlan:
    """Everything ``bench`` was asked, checked."""

    configs: list[runner.BenchConfig]
    inputs: runner.Inputs


def _inputs(suite: str | None, audio: str | None, refs: str | None) -> runner.Inputs:
    from leanspeech.audio import decode_audio

    if suite and audio:
        fail("give --suite or --audio, not both", 2)
    if suite:
        inputs = runner.suite(suite, runner.find_jfk())
    elif audio:
        files = runner._audio_files(audio)
        inputs = runner.Inputs(files, runner.load_refs(files, refs))
        if not inputs.refs:
            inputs.notes.append("no references: only agreement between configurations is reported")
    else:
        fail("give --suite quick|long or --audio FILES_OR_DIR", 2)
    for f in inputs.files:
        decode_audio(f)  # unreadable or corrupt audio fails here, before any work
    return inputs


def _torch_precisions(backend_list: tuple[str, ...], torch_precisions: str) -> tuple[str, ...]:
    if "torch" not in backend_list:
        return ()
    from leanspeech.stt.torch_engine import TORCH_PRECISIONS, import_torch

    import_torch()
    chosen = tuple(_csv(torch_precisions))
    bad = [p for p in chosen if p not in TORCH_PRECISIONS]
    if bad:
        fail(f"unknown torch precision {bad[0]!r} (valid: {', '.join(TORCH_PRECISIONS)})", 2)
    return chosen


def _plan(models: str, precisions: str, device: str, batch_sizes: str, beam_sizes: str, audio: str | None,
          refs: str | None, suite: str | None, anchors: str, backends: str, torch_precisions: str,
          threads: int) -> BenchPlan:
    """Check every argument before any work starts (exit 2 with one line on the first bad one)."""
    from leanspeech.devices import find_device
    from leanspeech.precision import check_precision
    from leanspeech.stt.backends import BACKENDS

    try:
        model_list = _csv(models)
        prec_list = [check_precision(p) for p in _csv(precisions)]
        batches = [int(b) for b in _csv(batch_sizes)]
        beams = [int(b) for b in _csv(beam_sizes)]
        if any(b < 0 for b in batches) or any(not 1 <= b <= 16 for b in beams):
            fail("batch sizes must be >= 0 and beam sizes 1..16", 2)
        dev = find_device(device)
        runner.check_models(model_list)
        backend_list = tuple(_csv(backends))
        if not backend_list or any(b not in BACKENDS for b in backend_list):
            fail(f"unknown backend in {backends!r} (valid: {', '.join(BACKENDS)})", 2)
        torch_prec = _torch_precisions(backend_list, torch_precisions)
        anchor_list = _csv(anchors)
        bad = [a for a in anchor_list if a not in ANCHORS]
        if bad:
            fail(f"unknown anchor {bad[0]!r} (valid: {', '.join(ANCHORS)})", 2)
        inputs = _inputs(suite, audio, refs)
    except LeanspeechError as exc:
        fail(str(exc), 2)
    except ValueError as exc:
        fail(f"bad number in a list: {exc}", 2)
    if "openai-whisper" in anchor_list and (why := runner.openai_whisper_note()):
        inputs.notes.append(why)
        anchor_list = [a for a in anchor_list if a != "openai-whisper"]
    configs = runner.expand(model_list, prec_list, batches, beams, dev.id, threads, anchor_list, backend_list,
                            torch_prec)
    return BenchPlan(configs, inputs)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        fail(f"output directory {out} is not writable: {exc.strerror or exc}", 2)


def _run(plan: BenchPlan, repeat: int) -> tuple[list[dict], bool]:
    """Every configuration, with a progress bar per configuration and per audio file."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    for note in plan.inputs.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    files = plan.inputs.files
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        job = bar.add_task("configurations", total=len(plan.configs))
        audio_job = bar.add_task("audio files", total=len(files))

        def progress(config: runner.BenchConfig, row: dict) -> None:
            bar.update(job, advance=1, description=config.label)
            bar.reset(audio_job, total=len(files))

        def on_file(done: int, total: int, seconds: float) -> None:
            bar.update(audio_job, completed=done, description=f"audio files ({seconds:.0f} s done last)")

        return runner.run(plan.configs, plan.inputs, repeat, progress, on_file)


@app.command()
def bench(
    models: str = typer.Option("tiny.en", help="Comma-separated models (catalog names or local paths)."),
    precisions: str = typer.Option("auto,float32,int8", help="Comma-separated precisions."),
    device: str = typer.Option("cpu", help="cpu or cuda:N."),
    batch_sizes: str = typer.Option("0,8", "--batch-sizes", help="0 = sequential; N = batched."),
    beam_sizes: str = typer.Option("5", "--beam-sizes", help="Comma-separated beam sizes."),
    audio: str | None = typer.Option(None, help="Audio files and/or directories (comma-separated)."),
    refs: str | None = typer.Option(None, help="References: a directory of NAME.txt or a TSV file<TAB>text "
                                    "(default: a .txt next to each audio file)."),
    suite: str | None = typer.Option(None, help="quick (jfk.flac + Piper sentences), long (5 min of Piper speech) "
                                     "or multilingual (jfk, Piper English, espeak-ng German, Spanish, French)."),
    anchors: str = typer.Option("", help="faster-whisper and/or openai-whisper (comma-separated)."),
    backends: str = typer.Option("ctranslate2", help="ctranslate2 and/or torch (comma-separated)."),
    torch_precisions: str = typer.Option("float32,bfloat16,int8-dynamic,autocast", "--torch-precisions",
                                         help="Precisions of the torch backend rows (float16 is CUDA-only)."),
    repeat: int = typer.Option(1, min=1, help="Runs per file; the median wall time counts."),
    threads: int = typer.Option(0, help="CPU threads (0 = all)."),
    out: Path = typer.Option(Path("bench-results"), help="Output directory."),
    markdown: bool = typer.Option(False, "--markdown", help="Also print a markdown table."),
):
    """Memory, speed and WER for every model x precision x batch x beam on the same audio,
    each configuration in a fresh process, with anchors measured in the same run."""
    from rich.console import Console

    from leanspeech.measure import report
    from leanspeech.measure.machine import describe

    settings()
    plan = _plan(models, precisions, device, batch_sizes, beam_sizes, audio, refs, suite, anchors, backends,
                 torch_precisions, threads)
    _check_writable(out)
    rows, interrupted = _run(plan, repeat)
    meta = {
        "command": "leanspeech bench " + " ".join(sys.argv[2:]),
        "machine": describe(), "files": [str(f) for f in plan.inputs.files], "references": bool(plan.inputs.refs),
        "repeat": repeat, "threads": threads, "notes": plan.inputs.notes, "interrupted": interrupted,
    }
    result = report.write(rows, meta, out)
    Console().print(report.rich_table(rows))
    if markdown:
        typer.echo(result["markdown"])
    typer.echo(f"wrote {out / 'results.json'}, {out / 'results.csv'}" + (", charts" if result.get("charts") else ""),
               err=True)
    if interrupted:
        fail(f"interrupted: {len(rows)} of {len(plan.configs)} configurations finished and were written", 130)
