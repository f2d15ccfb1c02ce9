#!/usr/bin/env python
"""The int8 stored copy of tiny.en against the bundled float16 copy loaded at int8.

Disk bytes of model.bin, load time (median of --repeat fresh processes each), and the
transcript of jfk.flac (must be identical).

    python benchmarks/stored_copy.py --audio ../shared/data/jfk.flac
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
t = time.perf_counter()
from faster_whisper import WhisperModel
m = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=2)
load = time.perf_counter() - t
segs, _ = m.transcribe(sys.argv[2], beam_size=5)
print(json.dumps({"load_s": load, "text": " ".join(s.text.strip() for s in segs)}))
"""


def child(path: Path, audio: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), audio], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stored_copy_cpu.json")
    args = parser.parse_args()
    import tempfile

    from leanspeech.measure.machine import command, describe
    from leanspeech.models.quantize import quantize_model
    from leanspeech.models.store import resolve_model

    original = resolve_model("tiny.en")
    stored = quantize_model(original, "int8", Path(tempfile.mkdtemp()))
    rows = {}
    for name, path in (("bundled float16, loaded at int8", original.path), ("stored int8 copy", stored)):
        runs = [child(path, args.audio) for _ in range(args.repeat)]
        rows[name] = {"model_bin_bytes": (Path(path) / "model.bin").stat().st_size,
                      "load_s": statistics.median(r["load_s"] for r in runs), "load_runs": [r["load_s"] for r in runs],
                      "text": runs[0]["text"]}
    a, b = rows.values()
    report = {
        "command": command(),
        "machine": describe(),
        "rows": rows,
        "disk_ratio": b["model_bin_bytes"] / a["model_bin_bytes"],
        "load_ratio": b["load_s"] / a["load_s"],
        "same_transcript": a["text"] == b["text"],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps({k: report[k] for k in ("disk_ratio", "load_ratio", "same_transcript")}),
        {k: (v["model_bin_bytes"], round(v["load_s"], 3)) for k, v in rows.items()},
    )


if __name__ == "__main__":
    main()
