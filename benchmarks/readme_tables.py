#!/usr/bin/env python
"""Print the README's "Measured results" section from the committed result files.

    python benchmarks/readme_tables.py > /tmp/results.md   # then paste between the markers
    python benchmarks/readme_tables.py --write             # or rewrite README.md in place
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- results -->", "<!-- /results -->"


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def machine(report: dict) -> str:
    m = report["machine"]
    return f"{m['cpu']}, {m['cores']} cores, {m['ram'] / 2**30:.0f} GiB RAM; ctranslate2 {m['versions'].get('ctranslate2')}, faster-whisper {m['versions'].get('faster-whisper')}"


def precision_table() -> str:
    rows = ["| audio | precision | RTF | x real time | peak RSS MiB | WER % | result file |", "|---|---|---|---|---|---|---|"]
    for audio, files in (("jfk.flac (11 s)", ("jfk_cpu_int8.json", "jfk_cpu_float32.json")),
                         ("5-min Piper speech", ("longform_cpu.json", "longform_cpu_float32.json"))):
        for name in files:
            report = load(name)
            if not report:
                continue
            row = next(r for r in report["rows"] if r["name"].startswith("leanspeech batched"))
            rows.append(f"| {audio} | {report['precision']} | {row['rtf']:.4f} | {1 / row['rtf']:.0f} | "
                        f"{row['peak_rss'] / 2**20:.0f} | {row['wer'] * 100:.2f} | `benchmarks/results/{name}` |")
    return "\n".join(rows)


def main() -> None:
    parts = []
    lf = load("longform_cpu.json")
    if lf:
        parts.append(
            "### Long-form transcription against faster-whisper (`benchmarks/longform.py`)\n\n"
            f"{lf['audio']['seconds']:.0f} s of speech with pauses, tiny.en at {lf['precision']}, beam {lf['beam_size']}, "
            f"{lf['threads']} threads, each configuration in a fresh process, median of {lf['repeat']} runs; "
            f"the anchor is {lf['anchor']} in the same run. Machine: {machine(lf)}.\n"
            f"Command: `{lf['command'].strip()}` (results: `benchmarks/results/longform_cpu.json`; "
            "a second run: `longform_cpu_run1.json`).\n\n" + lf["markdown"]
        )
    parts.append("### Real-time factor and peak RSS by precision (leanspeech batched, tiny.en, 2 threads)\n\n"
                 "Peak RSS is the whole process's (`ru_maxrss`), load included. Commands: "
                 "`python benchmarks/longform.py --audio ../shared/data/jfk.flac --reference \"...\" --precision P "
                 "--configs fw-seq,ls-batched --out benchmarks/results/jfk_cpu_P.json` and "
                 "`python benchmarks/longform.py --precision float32 --configs fw-seq,ls-batched --out "
                 "benchmarks/results/longform_cpu_float32.json`.\n\n" + precision_table())
    load_report = load("server_load_cpu.json")
    if load_report:
        parts.append(
            "### Server under concurrent clients (`benchmarks/server_load.py`)\n\n"
            f"Clips of {min(load_report['clips_s']):.0f}-{max(load_report['clips_s']):.0f} s, {load_report['requests_per_client']} "
            f"requests per client per level, tiny.en int8, beam 5, {load_report['threads']} threads, loopback. "
            f"The anchor is the same server with batching off (`--no-batching`), in the same run. "
            f"Command: `{load_report['command'].strip()}`.\n\n" + load_report["markdown"]
        )
    text = "\n\n".join(parts)
    if "--write" in sys.argv:
        readme = README.read_text()
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    else:
        print(text)


if __name__ == "__main__":
    main()
