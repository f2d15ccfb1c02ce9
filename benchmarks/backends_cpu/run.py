"""Both backends at every CPU precision, and the openai-whisper anchor, on the same audio.

    python benchmarks/backends_cpu/run.py            # runs leanspeech bench, then summarizes
    python benchmarks/backends_cpu/run.py --summary  # summarize the committed results only
    python benchmarks/backends_cpu/run.py --readme   # the README table: both committed runs

It runs ``leanspeech bench --suite long`` (5 minutes of Piper speech) on tiny.en with the
CTranslate2 backend (float32, int8; sequential and batched), the torch backend (float32,
bfloat16, int8-dynamic, autocast; batched) and openai-whisper on the exported checkpoint,
all greedy, 2 threads. Each configuration runs in a fresh process. The summary gives ratios
to anchors measured in the same bench run (each of the two runs has its own openai-whisper
row): speed against openai-whisper (the seed's "1.8x faster than OpenAI Whisper on CPU"),
and torch int8-dynamic against torch float32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bench(out: Path) -> None:
    common = ["--suite", "long", "--models", "tiny.en", "--beam-sizes", "1", "--threads", "2", "--markdown"]
    runs = [  # (directory, arguments): CT2 rows with the faster-whisper and openai-whisper anchors, then torch
        (
            out / "ctranslate2",
            [
                "--precisions",
                "float32,int8",
                "--batch-sizes",
                "0,8",
                "--backends",
                "ctranslate2",
                "--anchors",
                "openai-whisper",
            ],
        ),
        (
            out / "torch",
            [
                "--precisions",
                "float32",
                "--batch-sizes",
                "8",
                "--backends",
                "ctranslate2,torch",
                "--torch-precisions",
                "float32,bfloat16,int8-dynamic,autocast",
                "--anchors",
                "openai-whisper",
            ],
        ),
    ]
    for directory, args in runs:
        subprocess.run(
            [sys.executable, "-m", "leanspeech", "bench", *common, *args, "--out", str(directory)], check=True
        )


def rows(out: Path) -> list[dict]:
    found = []
    for part in ("ctranslate2", "torch"):
        data = json.loads((out / part / "results.json").read_text())
        found += [dict(r, part=part) for r in data["rows"] if r.get("ok")]
    return found


def summary(out: Path) -> str:
    """One table per bench run; every ratio is to a row of the same run."""
    all_rows = rows(out)
    lines = [
        "| run | configuration | x real time | peak RSS MiB | WER % | speed vs openai-whisper "
        "| speed vs torch float32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for part in ("ctranslate2", "torch"):
        mine = [r for r in all_rows if r["part"] == part]
        ow = next(r for r in mine if r["engine"] == "openai-whisper")
        torch32 = next(
            (r for r in mine if r["engine"] == "leanspeech-torch" and r["effective_precision"] == "float32"), None
        )
        for r in mine:
            vs_t = f"{torch32['wall_s'] / r['wall_s']:.2f}x" if torch32 is not None else "-"
            wer = f"{r['wer'] * 100:.2f}" if r.get("wer") is not None else "-"
            lines.append(
                f"| {part} | {r['label']} | {r['audio_s'] / r['wall_s']:.1f} | {r['peak_rss'] / 2**20:.0f} | "
                f"{wer} | {ow['wall_s'] / r['wall_s']:.2f}x | {vs_t} |"
            )
    return "\n".join(lines) + "\n"


def readme_table(outs: list[Path]) -> str:
    """The README's table: one row per configuration of each bench run, its figures from every
    run (``run 1 / run 2``), each ratio to a row of the same bench run."""
    runs = [summary_rows(out) for out in outs]
    lines = [
        "| bench run | configuration | x real time | peak RSS MiB | WER % | speed vs openai-whisper "
        "| speed vs torch float32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in runs[0]:
        cells = [[run[key][i] for run in runs if key in run] for i in range(5)]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(" / ".join(dict.fromkeys(c)) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def summary_rows(out: Path) -> dict[tuple[str, str], list[str]]:
    """(bench run, configuration) -> the summary's five figures, as text."""
    found = {}
    for line in summary(out).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        label = cells[1].replace(" beam 1", "").replace("batch 0", "sequential").replace("tiny.en ", "")
        label = label.replace("leanspeech torch", "torch").replace("leanspeech", "CTranslate2")
        found[(cells[0], label)] = cells[2:]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--summary", action="store_true", help="only summarize existing results")
    parser.add_argument("--readme", action="store_true", help="print the README table of the committed runs")
    args = parser.parse_args()
    if args.readme:
        print(readme_table([HERE, HERE / "run2"]), end="")
        return
    if not args.summary:
        bench(args.out)
    text = summary(args.out)
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
