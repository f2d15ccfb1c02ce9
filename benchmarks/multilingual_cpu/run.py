#!/usr/bin/env python
"""Accuracy against precision beyond tiny.en: tiny.en and base at every CPU precision, on
real speech (jfk.flac) and synthesized speech in four languages (Piper English, espeak-ng
German, Spanish and French), with the WER per language; two bench runs, and a plan of both
models' memory and speed.

    python benchmarks/multilingual_cpu/run.py            # both bench runs and the plan (~12 min here)
    python benchmarks/multilingual_cpu/run.py --readme   # the README table from the committed results

Needs espeak-ng (apt-get install espeak-ng) and leanspeech[multilingual].
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = (HERE, HERE / "run2")
BENCH = ["--suite", "multilingual", "--models", "tiny.en,base", "--precisions", "float32,int8_float32,int8",
         "--batch-sizes", "0,8", "--beam-sizes", "5", "--threads", "2"]
PLAN = ["--models", "tiny.en,base", "--precisions", "float32,int8_float32,int8", "--batch-sizes", "1,8",
        "--threads", "2", "--refresh"]
LANGUAGES = ("en", "de", "es", "fr")
PLAN_DIR = HERE.parent / "plan_base_cpu"


def leanspeech(*args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "leanspeech", *args], check=True, env=env)


def cell(values: list[str]) -> str:
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def readme() -> str:
    runs = [json.loads((run / "results.json").read_text()) for run in RUNS]
    rows = [{r["label"]: r for r in run["rows"] if r["ok"]} for run in runs]
    lines = ["| configuration | peak RSS MiB | x real time | WER % all | " + " | ".join(
        f"WER {lang} %" for lang in LANGUAGES) + " |", "|---|---|---|---|" + "---|" * len(LANGUAGES)]
    for label in rows[0]:
        both = [run[label] for run in rows if label in run]
        by_lang = [[f"{r['wer_by_language'][lang] * 100:.1f}" for r in both] for lang in LANGUAGES]
        peak = cell([f"{r['peak_rss'] / 2**20:.0f}" for r in both])
        speed = cell([f"{1 / r['rtf']:.1f}" for r in both])
        wer = cell([f"{r['wer'] * 100:.1f}" for r in both])
        lines.append(f"| {label.removeprefix('leanspeech ')} | {peak} | {speed} | {wer} | "
                     + " | ".join(cell(v) for v in by_lang) + " |")
    plans = [json.loads((PLAN_DIR / sub / "plan.json").read_text())["rows"] for sub in ("", "run2")]
    lines += ["", "| model | precision | batch | peak RSS MiB | x real time greedy | x real time beam 5 |",
              "|---|---|---|---|---|---|"]
    for first, second in zip(*plans, strict=True):
        both = (first, second)
        peak = cell(["{:.0f}".format(r["peak_bytes"] / 2**20) for r in both])
        greedy = cell(["{:.1f}".format(1 / r["rtf_greedy"]) for r in both])
        beam = cell(["{:.1f}".format(1 / r["rtf_beam5"]) for r in both])
        lines.append(f"| {first['model']} | {first['precision']} | {first['batch']} | {peak} | {greedy} | {beam} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="store_true", help="print the README table and exit")
    args = parser.parse_args()
    if args.readme:
        print(readme())
        return
    for run in RUNS:
        leanspeech("bench", *BENCH, "--out", str(run), "--markdown")
    for sub in ("", "run2"):
        leanspeech("plan", *PLAN, "--out", str(PLAN_DIR / sub))
    print(readme())


if __name__ == "__main__":
    main()
