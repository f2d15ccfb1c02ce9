"""``leanspeech models list | info | pull | quantize | synth | rm``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from leanspeech.cli.app import app, fail, settings
from leanspeech.errors import LeanspeechError

models_app = typer.Typer(help="Models on disk: list, inspect, pull, store at a precision, synthesize, remove.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

PRECISIONS = ("float32", "float16", "bfloat16", "int8_float32", "int8_float16", "int8")


def _entry(name: str):
    from leanspeech.errors import UnknownModelError
    from leanspeech.models.catalog import CATALOG

    if name not in CATALOG:
        fail(str(UnknownModelError(name, CATALOG)), 2)
    return CATALOG[name]


def _stored(model_dir: Path) -> list[dict]:
    """leanspeech's own copies: quantized and synthetic."""
    from leanspeech.models.modelbin import read_header
    from leanspeech.models.quantize import dir_bytes

    out = []
    for kind in ("quantized", "synthetic"):
        root = model_dir / kind
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.iterdir() if (p / "model.bin").is_file()):
            try:
                dtype = read_header(path).weight_dtype
            except LeanspeechError:
                dtype = "corrupt"
            out.append(
                {
                    "kind": kind,
                    "name": path.name,
                    "path": str(path),
                    "stored_dtype": dtype,
                    "bytes": dir_bytes(path),
                    "synthetic": (path / "SYNTHETIC").exists(),
                }
            )
    return out


@models_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json")):
    """Each known model: where it comes from, whether it is here, its stored dtype and size."""
    import json

    from rich.console import Console
    from rich.table import Table

    from leanspeech.memory import format_bytes
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.modelbin import read_header
    from leanspeech.models.quantize import dir_bytes
    from leanspeech.models.store import local_sources

    cfg = settings()
    rows: list[dict[str, Any]] = []
    for name, entry in CATALOG.items():
        found = local_sources(entry, cfg.model_dir)
        row = {
            "name": name,
            "repo": entry.repo,
            "present": bool(found),
            "source": found[0][0] if found else None,
            "path": str(found[0][1]) if found else None,
            "stored_dtype": None,
            "bytes": None,
        }
        if found:
            row["stored_dtype"] = read_header(found[0][1]).weight_dtype
            row["bytes"] = dir_bytes(found[0][1])
        rows.append(row)
    stored = _stored(cfg.model_dir)
    if json_out:
        typer.echo(json.dumps({"catalog": rows, "stored": stored}, indent=2))
        return
    table = Table(title="Catalog")
    for col in ("model", "present", "source", "stored dtype", "on disk", "comes from"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            "yes" if r["present"] else "no",
            r["source"] or "-",
            r["stored_dtype"] or "-",
            format_bytes(r["bytes"]),
            r["repo"],
        )
    console = Console()
    console.print(table)
    if stored:
        table = Table(title=f"Stored by leanspeech in {cfg.model_dir}")
        for col in ("kind", "name", "stored dtype", "on disk"):
            table.add_column(col)
        for r in stored:
            table.add_row(
                r["kind"] + (" (SYNTHETIC: random weights)" if r["synthetic"] else ""),
                r["name"],
                r["stored_dtype"],
                format_bytes(r["bytes"]),
            )
        console.print(table)


@models_app.command()
def info(name: str, json_out: bool = typer.Option(False, "--json")):
    """Architecture and the weight bytes at each precision."""
    import json

    from leanspeech.memory import format_bytes
    from leanspeech.models.modelbin import read_header, weight_bytes_at
    from leanspeech.models.sizing import weights_from_arch
    from leanspeech.models.store import local_sources

    cfg = settings()
    entry = _entry(name)
    arch = entry.arch
    found = local_sources(entry, cfg.model_dir)
    header = read_header(found[0][1]) if found else None
    by_precision = {p: (weight_bytes_at(header, p) if header else weights_from_arch(arch, p)) for p in PRECISIONS}
    report = {
        "name": name,
        "repo": entry.repo,
        "present": bool(found),
        "english_only": entry.english_only,
        "architecture": {
            "encoder_layers": arch.encoder_layers,
            "decoder_layers": arch.decoder_layers,
            "heads": arch.heads,
            "d_model": arch.d_model,
            "n_mels": arch.n_mels,
            "vocab_size": arch.vocab_size,
            "parameters": arch.parameters,
        },
        "weight_bytes": by_precision,
        "weight_bytes_from": "model.bin on disk" if header else "architecture (model not on disk)",
    }
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    a = report["architecture"]
    typer.echo(f"{name}  ({entry.repo}; {'here' if found else 'not on disk'})")
    typer.echo(
        f"  layers {a['encoder_layers']} encoder / {a['decoder_layers']} decoder, {a['heads']} heads, "
        f"width {a['d_model']}, {a['n_mels']} mel bins, vocabulary {a['vocab_size']}, "
        f"{a['parameters'] / 1e6:.1f}M parameters"
    )
    typer.echo(f"  weight bytes by precision ({report['weight_bytes_from']}):")
    for p, b in by_precision.items():
        typer.echo(f"    {p:13s} {format_bytes(b):>10s}")


@models_app.command()
def pull(name: str):
    """Download a catalog model into the model directory (needs network)."""
    from leanspeech.models.store import download, local_sources

    cfg = settings()
    entry = _entry(name)
    found = local_sources(entry, cfg.model_dir)
    if found:
        typer.echo(f"{name} is already here ({found[0][0]}: {found[0][1]})")
        return
    if cfg.is_offline:
        fail(f"cannot pull {name!r}: offline (HF_HUB_OFFLINE or LEANSPEECH_OFFLINE is set)")
    try:
        path = download(entry, cfg.model_dir)
    except LeanspeechError as exc:
        fail(str(exc))
    typer.echo(f"{name} -> {path}")


@models_app.command()
def quantize(
    name: str,
    precision: str = typer.Option(..., "--precision", "-p", help=", ".join(PRECISIONS)),
    force: bool = typer.Option(False, help="Write it again even if it exists."),
):
    """Store NAME with its weights at PRECISION (once); later loads at that precision use it."""
    import time

    from leanspeech.memory import format_bytes
    from leanspeech.models.quantize import STORABLE, dir_bytes, quantize_model
    from leanspeech.models.store import resolve_model

    cfg = settings()
    if precision not in STORABLE:
        fail(f"cannot store weights as {precision!r} (valid: {', '.join(STORABLE)})", 2)
    try:
        resolved = resolve_model(name, model_dir=cfg.model_dir, offline=True)
        start = time.perf_counter()
        path = quantize_model(resolved, precision, cfg.model_dir, force=force)
    except LeanspeechError as exc:
        fail(str(exc))
    typer.echo(
        f"{name} at {precision}: {path} ({format_bytes(dir_bytes(path))}, "
        f"was {format_bytes(dir_bytes(resolved.path))}; "
        f"{time.perf_counter() - start:.1f} s)"
    )


@models_app.command()
def export(
    name: str,
    fmt: str = typer.Option(..., "--format", "-f", help="transformers or openai-whisper"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Target directory (default: exports/ in the model directory)."
    ),
    force: bool = typer.Option(False, help="Replace the target if it exists."),
):
    """Export NAME's CTranslate2 weights, exactly, to a transformers checkpoint or an
    openai-whisper checkpoint (for the torch backend and the openai-whisper anchor)."""
    import time

    from leanspeech.memory import format_bytes
    from leanspeech.models.export import FORMATS, export_path
    from leanspeech.models.export import export as export_model
    from leanspeech.models.quantize import dir_bytes
    from leanspeech.models.store import resolve_model

    cfg = settings()
    if fmt not in FORMATS:
        fail(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})", 2)
    try:
        resolved = resolve_model(name, model_dir=cfg.model_dir, offline=True)
        target = output or export_path(cfg.model_dir, resolved, fmt)
        start = time.perf_counter()
        path = export_model(resolved.path, target, fmt, force=force)
    except LeanspeechError as exc:
        fail(str(exc))
    size = dir_bytes(path) if path.is_dir() else path.stat().st_size
    typer.echo(f"{name} as {fmt}: {path} ({format_bytes(size)}; {time.perf_counter() - start:.1f} s)")


@models_app.command()
def synth(
    name: str,
    precision: str = typer.Option("float16", "--precision", "-p", help="storage precision"),
    force: bool = typer.Option(False),
):
    """Build a model with NAME's real architecture and random weights (for measuring only)."""
    from leanspeech.memory import format_bytes
    from leanspeech.models.quantize import dir_bytes
    from leanspeech.models.synth import build_synthetic

    cfg = settings()
    _entry(name)
    try:
        path = build_synthetic(name, cfg.model_dir, precision, force=force)
    except LeanspeechError as exc:
        fail(str(exc))
    typer.echo(
        f"SYNTHETIC {name} (random weights, never served) at {precision}: {path} ({format_bytes(dir_bytes(path))})"
    )


@models_app.command()
def rm(name: str):
    """Remove leanspeech's copies of NAME (pulled, stored, synthetic). Bundled packages and the
    Hugging Face cache are left alone."""
    cfg = settings()
    _entry(name)
    removed = []
    from leanspeech.models.quantize import STORABLE

    # exact names only: "large-v3" must not take "large-v3-turbo-int8" with it
    own = {f"{name}-{p}" for p in STORABLE}
    candidates = [cfg.model_dir / name]
    for kind in ("quantized", "synthetic"):
        root = cfg.model_dir / kind
        if root.is_dir():
            candidates += [p for p in root.iterdir() if p.name in own]
    for path in candidates:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(path))
    if not removed:
        typer.echo(f"nothing of {name} in {cfg.model_dir} (bundled and Hugging Face cache copies are not touched)")
    for path in removed:
        typer.echo(f"removed {path}")
