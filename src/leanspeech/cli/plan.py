"""``leanspeech plan``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from leanspeech.cli.app import app, fail, settings

if TYPE_CHECKING:
    from leanspeech.devices import DeviceInfo
    from leanspeech.measure.plan import Config


def _csv(value: str | None, default: list[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else default


def _configs(device: str, models: str | None, precisions: str | None, batch_sizes: str, threads: int,
             budget: str | None) -> tuple[list[Config], int | None, DeviceInfo]:
    """(configurations, budget bytes, device): every argument checked, exit 2 on the first bad one."""
    from leanspeech.devices import find_device
    from leanspeech.errors import LeanspeechError, UnknownModelError
    from leanspeech.measure.plan import Config
    from leanspeech.memory import parse_bytes
    from leanspeech.models.catalog import CATALOG
    from leanspeech.precision import supported_precisions

    names = _csv(models, ["tiny.en", "base.en", "small.en"])
    for name in names:
        if name not in CATALOG:
            fail(str(UnknownModelError(name, CATALOG)), 2)
    try:
        dev = find_device(device)
    except LeanspeechError as exc:
        fail(str(exc), 2)
    supported = supported_precisions(dev)
    wanted = _csv(precisions, [p for p in ("float32", "float16", "bfloat16", "int8_float16", "int8_float32", "int8")
                               if p in supported])
    bad = [p for p in wanted if p not in supported]
    if bad:
        fail(f"{dev.id} cannot run {', '.join(bad)} (it supports: {', '.join(supported)})", 2)
    try:
        limit = parse_bytes(budget)
        batches = [int(b) for b in _csv(batch_sizes, ["1"])]
    except ValueError as exc:
        fail(str(exc), 2)
    if any(b < 1 for b in batches):
        fail("batch sizes must be >= 1", 2)
    return [Config(m, p, b, dev.id, threads) for m in names for p in wanted for b in batches], limit, dev


def _measure(configs: list[Config], model_dir: Path, refresh: bool, quiet: bool) -> list[dict]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from leanspeech.measure.plan import Cache, run

    cache = Cache(model_dir / "plan-cache.json")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True, disable=quiet) as bar:
        job = bar.add_task("measuring", total=len(configs))

        def progress(config, row):
            bar.update(job, advance=1, description=f"{config.model} {config.precision} b{config.batch}")

        try:
            return run(configs, model_dir, cache, progress, refresh=refresh)
        except KeyboardInterrupt:
            fail("interrupted (no measurement process left running)", 130)


def _print_table(rows: list[dict], advice: dict, title: str, limit: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from leanspeech.memory import format_bytes

    table = Table(title=title + (f", budget {format_bytes(limit)}" if limit else ""))
    for col in (
        "model",
        "precision",
        "batch",
        "peak memory",
        "estimate (error)",
        "load s",
        "x RT greedy",
        "x RT beam 5",
    ):
        table.add_column(col, justify="right" if col not in ("model", "precision") else "left")
    for r in rows:
        label = r["model"] + (" (synthetic)" if r.get("synthetic") else "")
        if not r["ok"]:
            table.add_row(label, r["precision"], str(r["batch"]), f"failed: {r['error']}", "", "", "", "")
            continue
        err = r["estimate_error"]
        table.add_row(
            label,
            r["precision"],
            str(r["batch"]),
            format_bytes(r["peak_bytes"]),
            f"{format_bytes(r['estimate_bytes'])} ({err * 100:+.0f}%)" if err is not None else "-",
            f"{r['load_s']:.2f}",
            f"{1 / r['rtf_greedy']:.1f}",
            f"{1 / r['rtf_beam5']:.1f}",
        )
    console = Console()
    console.print(table)
    console.print(
        "peak memory = the whole process (RSS on CPU, NVML on CUDA); estimate = weights + activations + "
        "decode state for the model alone, error against peak minus the process's RSS before loading."
    )
    if advice["fits"]:
        console.print(
            f"[bold]Recommended[/bold]: {advice['model']} at {advice['precision']}, batch up to "
            f"{advice['batch']} (peak {format_bytes(advice['peak_bytes'])})"
            + (" - measured on synthetic weights" if advice["synthetic"] else "")
        )
    else:
        smallest = advice.get("smallest")
        extra = (
            (
                f"; the smallest is {smallest['model']} at {smallest['precision']} batch {smallest['batch']}: "
                f"{format_bytes(smallest['peak_bytes'])}"
            )
            if smallest
            else ""
        )
        console.print(f"[bold red]Nothing fits[/bold red] {format_bytes(limit)}{extra}")


@app.command()
def plan(
    device: str = typer.Option("cpu", help="cpu or cuda:N."),
    budget: str | None = typer.Option(None, help="Memory budget, e.g. 4GiB (RAM on CPU, VRAM on CUDA)."),
    models: str | None = typer.Option(None, help="Comma-separated catalog names (default: tiny.en,base.en,small.en)."),
    precisions: str | None = typer.Option(None, help="Comma-separated (default: every precision the device supports)."),
    batch_sizes: str = typer.Option("1,8", "--batch-sizes", help="Comma-separated batch sizes."),
    threads: int = typer.Option(0, help="CPU threads (0 = all)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON and a PNG chart here (a directory)."),
    refresh: bool = typer.Option(False, help="Measure again even if cached."),
):
    """Measure what fits: peak memory, load time and speed per model x precision x batch."""
    import json

    from leanspeech.measure.machine import describe
    from leanspeech.measure.plan import chart, recommend

    cfg = settings()
    configs, limit, dev = _configs(device, models, precisions, batch_sizes, threads, budget)
    rows = _measure(configs, cfg.model_dir, refresh, quiet=json_out)
    advice = recommend(rows, limit)
    report = {"device": dev.id, "budget": limit, "rows": rows, "recommendation": advice, "machine": describe()}
    title = f"leanspeech plan on {dev.name or dev.id}"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "plan.json").write_text(json.dumps(report, indent=2) + "\n")
        chart(rows, out / "plan.png", title)
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_table(rows, advice, title, limit)
