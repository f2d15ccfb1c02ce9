"""Bench output: results.json (with the machine), results.csv, PNG charts, a rich table and
a markdown table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

COLUMNS = ("label", "engine", "model", "precision", "effective_precision", "batch", "beam", "ok", "error", "load_s",
           "disk_bytes", "peak_rss", "gpu_peak", "wall_s", "audio_s", "rtf", "wer", "cer", "wer_diff_points",
           "agreement", "reference_config", "anchor", "speed_vs_anchor", "peak_rss_vs_anchor", "wer_vs_anchor_points")


def _pct(v):
    return "-" if v is None else f"{v * 100:.2f}"


def _signed(v):
    return "-" if v is None else f"{v:+.2f}"


def _x(v, fmt="{:.2f}x"):
    return "-" if v is None else fmt.format(v)


def markdown(rows: list[dict]) -> str:
    languages = sorted({lang for r in rows if r["ok"] for lang in r.get("wer_by_language") or {}},
                       key=lambda lang: (lang != "en", lang))
    lang_head = "".join(f" WER {lang} % |" for lang in languages)
    lines = [
        "| configuration | peak RSS MiB | load s | RTF | x real time | WER % | CER % | WER diff vs top precision "
        f"| agreement | speed vs anchor | RSS vs anchor |{lang_head}",
        "|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(languages),
    ]
    for r in rows:
        if not r["ok"]:
            lines.append(f"| {r['label']} | failed: {r['error']} |  |  |  |  |  |  |  |  |  |" + " |" * len(languages))
            continue
        by_lang = r.get("wer_by_language") or {}
        lines.append(
            f"| {r['label']}{' (anchor)' if r['anchor_row'] else ''} | {r['peak_rss'] / 2**20:.0f} "
            f"| {r['load_s']:.2f} | "
            f"{r['rtf']:.4f} | {1 / r['rtf']:.0f} | {_pct(r['wer'])} | {_pct(r['cer'])} | "
            f"{_signed(r.get('wer_diff_points'))} | "
            f"{_pct(r.get('agreement'))} | {_x(r.get('speed_vs_anchor'))} | {_x(r.get('peak_rss_vs_anchor'))} |"
            + "".join(f" {_pct(by_lang.get(lang))} |" for lang in languages)
        )
    return "\n".join(lines)


ENGINE_MARK = {
    "leanspeech-torch": "torch ",
    "faster-whisper": "FW ",
    "faster-whisper-batched": "FW ",
    "openai-whisper": "OW ",
}  # chart labels; plain leanspeech (CTranslate2) has none


def charts(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["ok"]]
    made = []
    specs = [
        (
            "memory_vs_wer.png",
            "peak RSS (MiB)",
            "WER (%)",
            lambda r: r["peak_rss"] / 2**20,
            lambda r: (r["wer"] or 0) * 100,
            "Peak memory against WER",
        ),
        (
            "speed_vs_memory.png",
            "peak RSS (MiB)",
            "speed (x real time)",
            lambda r: r["peak_rss"] / 2**20,
            lambda r: 1 / r["rtf"],
            "Speed against memory",
        ),
    ]
    for name, xl, yl, fx, fy, title in specs:
        fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
        for r in ok:
            anchor = r["anchor_row"]
            ax.scatter(
                fx(r),
                fy(r),
                marker="^" if anchor else "o",
                s=70 if anchor else 45,
                color="C3" if anchor else "C0",
                alpha=0.85,
            )
            ax.annotate(
                f"{ENGINE_MARK.get(r['engine'], '')}{r['effective_precision']} b{r['batch']} k{r['beam']}",
                (fx(r), fy(r)),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(
            f"{title} (circles leanspeech, red triangles anchors: FW faster-whisper, OW openai-whisper; "
            "b = batch, k = beam)"
        )
        ax.title.set_fontsize(9)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
        made.append(out / name)
    return made


def write(rows: list[dict], meta: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report = {**meta, "rows": rows, "markdown": markdown(rows)}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in COLUMNS})
    if any(r["ok"] for r in rows):
        report["charts"] = [str(p) for p in charts(rows, out)]
        (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def rich_table(rows: list[dict]):
    from rich.table import Table

    table = Table(title="leanspeech bench")
    for col in (
        "configuration",
        "peak RSS",
        "load s",
        "x RT",
        "WER %",
        "CER %",
        "Δ WER",
        "agree %",
        "speed/anchor",
        "RSS/anchor",
    ):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for r in rows:
        if not r["ok"]:
            table.add_row(r["label"], f"[red]failed: {r['error']}[/red]", *[""] * 8)
            continue
        table.add_row(
            r["label"] + (" [dim](anchor)[/dim]" if r["anchor_row"] else ""),
            f"{r['peak_rss'] / 2**20:.0f} MiB",
            f"{r['load_s']:.2f}",
            f"{1 / r['rtf']:.1f}",
            _pct(r["wer"]),
            _pct(r["cer"]),
            _signed(r.get("wer_diff_points")),
            _pct(r.get("agreement")),
            _x(r.get("speed_vs_anchor")),
            _x(r.get("peak_rss_vs_anchor")),
        )
    return table
