"""``leanspeech doctor``: devices, what each can run, and which models are here offline."""

from __future__ import annotations

from typing import Any

import typer

from leanspeech.cli.app import app, settings


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Devices and their capabilities, supported precisions, and models available offline."""
    import json
    from importlib.metadata import PackageNotFoundError, version

    from rich.console import Console
    from rich.table import Table

    from leanspeech.devices import list_devices
    from leanspeech.memory import format_bytes, nvml_available
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import local_sources
    from leanspeech.precision import supported_precisions

    cfg = settings()
    devices = list_devices()
    models: list[dict[str, Any]] = []
    for name, entry in CATALOG.items():
        found = local_sources(entry, cfg.model_dir)
        models.append({"name": name, "repo": entry.repo, "available": bool(found),
                       "sources": [{"source": s, "path": str(p)} for s, p in found]})
    versions: dict[str, str | None] = {}
    for pkg in ("leanspeech", "ctranslate2", "faster-whisper", "onnxruntime", "piper-tts", "av"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    report = {
        "versions": versions,
        "nvml": nvml_available(),
        "devices": [{**d.as_dict(), "precisions": list(supported_precisions(d))} for d in devices],
        "models": models,
        "offline": cfg.is_offline,
    }
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console()
    console.print("[bold]leanspeech doctor[/bold]  " + "  ".join(f"{k} {v or '-'}" for k, v in versions.items()))
    table = Table(title="Devices")
    for col in ("device", "name", "compute cap.", "memory", "precisions"):
        table.add_column(col)
    for d in report["devices"]:
        table.add_row(
            d["id"],
            d["name"],
            d["compute_capability"] or "-",
            format_bytes(d["memory_total"]),
            ", ".join(d["precisions"]),
        )
    console.print(table)
    if not any(d["kind"] == "cuda" for d in report["devices"]):
        console.print(
            "No CUDA device found (NVML " + ("present" if report["nvml"] else "absent") + "): running on CPU."
        )
    table = Table(title="Models")
    for col in ("model", "offline", "where"):
        table.add_column(col)
    for m in models:
        where = (
            "; ".join(f"{s['source']}: {s['path']}" for s in m["sources"])
            or f"absent: downloads from {m['repo']} on first use when online"
        )
        table.add_row(m["name"], "yes" if m["available"] else "no", where)
    console.print(table)
