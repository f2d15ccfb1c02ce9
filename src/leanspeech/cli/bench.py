"""``leanspeech bench``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .app import app, fail, settings


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def bench(
    models: str = typer.Option("tiny.en", help="Comma-separated models (catalog names or local paths)."),
    precisions: str = typer.Option("auto,float32,int8", help="Comma-separated precisions."),
    device: str = typer.Option("cpu", help="cpu or cuda:N."),
    batch_sizes: str = typer.Option("0,8", "--batch-sizes", help="0 = sequential; N = batched."),
    beam_sizes: str = typer.Option("5", "--beam-sizes", help="Comma-separated beam sizes."),
    audio: str | None = typer.Option(None, help="Audio files and/or directories (comma-separated)."),
    refs: str | None = typer.Option(None, help="References: a directory of NAME.txt or a TSV file<TAB>text (default: a .txt next to each audio file)."),
    suite: str | None = typer.Option(None, help="quick (jfk.flac + Piper sentences) or long (5 min of Piper speech)."),
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..bench import report, runner
    from ..bench.machine import describe
    from ..devices import list_devices
    from ..errors import LeanspeechError
    from ..precision import check_precision

    settings()
    console = Console(stderr=True)
    # --- everything is checked before any work starts ---
    try:
        model_list = _csv(models)
        prec_list = [check_precision(p) for p in _csv(precisions)]
        batches = [int(b) for b in _csv(batch_sizes)]
        beams = [int(b) for b in _csv(beam_sizes)]
        if any(b < 0 for b in batches) or any(not 1 <= b <= 16 for b in beams):
            fail("batch sizes must be >= 0 and beam sizes 1..16", 2)
        dev = next((d for d in list_devices() if d.id == device or (device == "cuda" and d.kind == "cuda")), None)
        if dev is None:
            fail(f"device {device!r} is not available (devices: {', '.join(d.id for d in list_devices())})", 2)
        runner.check_models(model_list)
        backend_list = tuple(_csv(backends))
        if not backend_list or any(b not in ("ctranslate2", "torch") for b in backend_list):
            fail(f"unknown backend in {backends!r} (valid: ctranslate2, torch)", 2)
        torch_prec = tuple(_csv(torch_precisions)) if "torch" in backend_list else ()
        if torch_prec:
            from ..stt.torch_engine import TORCH_PRECISIONS, import_torch

            import_torch()
            bad_prec = [p for p in torch_prec if p not in TORCH_PRECISIONS]
            if bad_prec:
                fail(f"unknown torch precision {bad_prec[0]!r} (valid: {', '.join(TORCH_PRECISIONS)})", 2)
        anchor_list = _csv(anchors)
        bad = [a for a in anchor_list if a not in ("faster-whisper", "openai-whisper")]
        if bad:
            fail(f"unknown anchor {bad[0]!r} (valid: faster-whisper, openai-whisper)", 2)
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
        from ..audio import decode_audio

        for f in inputs.files:
            decode_audio(f)  # unreadable or corrupt audio fails here, before any work
    except LeanspeechError as exc:
        fail(str(exc), 2)
    except ValueError as exc:
        fail(f"bad number in a list: {exc}", 2)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        fail(f"output directory {out} is not writable: {exc.strerror or exc}", 2)

    if "openai-whisper" in anchor_list and (why := runner.openai_whisper_note()):
        inputs.notes.append(why)
        anchor_list = [a for a in anchor_list if a != "openai-whisper"]
    configs = runner.expand(model_list, prec_list, batches, beams, dev.id, threads, anchor_list, backend_list, torch_prec)
    for note in inputs.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        job = bar.add_task("configurations", total=len(configs))
        audio_job = bar.add_task("audio files", total=len(inputs.files))

        def progress(config, row):
            bar.update(job, advance=1, description=config.label)
            bar.reset(audio_job, total=len(inputs.files))

        def on_file(done, total, seconds):
            bar.update(audio_job, completed=done, description=f"audio files ({seconds:.0f} s done last)")

        rows, interrupted = runner.run(configs, inputs, repeat, progress, on_file)
    meta = {
        "command": "leanspeech bench " + " ".join(os.sys.argv[2:]),
        "machine": describe(), "files": [str(f) for f in inputs.files], "references": bool(inputs.refs),
        "repeat": repeat, "threads": threads, "notes": inputs.notes, "interrupted": interrupted,
    }
    result = report.write(rows, meta, out)
    Console().print(report.rich_table(rows))
    if markdown:
        typer.echo(result["markdown"])
    typer.echo(f"wrote {out / 'results.json'}, {out / 'results.csv'}" + (", charts" if result.get("charts") else ""), err=True)
    if interrupted:
        fail(f"interrupted: {len(rows)} of {len(configs)} configurations finished and were written", 130)
