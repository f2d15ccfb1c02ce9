#!/usr/bin/env python
"""Does packing short clips into one 30-second window lose words? WER per gap length.

``stt/packing.py`` puts several files' short windows side by side, a gap of silence between
them, so that the encoder (on CPU the cost of a short clip) runs once for all of them, and
gives each part back its own aligned words; a part that gets no words, or that shares a word
with its neighbour across a gap, is decoded again alone. This measures, in one run, on the
same 101 clips as ``encoder_padding.py`` (Piper, espeak-ng, the real JFK recording and its
parts, JFK in noise) in a fixed shuffled order (so that kinds sit next to each other as they
would in a real job), the corpus WER and the time of ``transcribe_many`` without packing (the
anchor: each clip its own window) and with packing at each gap length.

    python benchmarks/packing.py --out benchmarks/results/packing_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from encoder_padding import clips, scores  # noqa: E402

GAPS = [None, 0.5, 1.0, 2.0]  # None: no packing (the anchor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "packing_cpu.json")
    args = parser.parse_args()

    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech import Transcriber
    from leanspeech.measure.machine import describe
    from leanspeech.stt import many, packing

    norm = EnglishTextNormalizer()
    data = clips()
    order = np.random.default_rng(2026).permutation(len(data))
    data = [data[i] for i in order]
    lengths = [c["audio"].shape[0] / 16000 for c in data]
    print(f"{len(data)} clips, {min(lengths):.1f}-{max(lengths):.1f} s, {sum(lengths):.0f} s", file=sys.stderr)
    t = Transcriber("tiny.en", device="cpu", precision="int8", cpu_threads=args.threads, beam_size=args.beam_size,
                    batch_size=8)
    t.transcribe(data[0]["audio"])  # warm-up
    redecoded = [0]
    unpack = packing.unpack

    def counting(pack, segments):
        out = unpack(pack, segments)
        redecoded[0] += sum(r is None for r in out)
        return out

    many.unpack = counting
    refs = [norm(c["text"]) for c in data]
    kinds = sorted({c["kind"] for c in data})
    rows = []
    for gap in GAPS:
        if gap is not None:
            packing.GAP_S = many.GAP_S = gap
        redecoded[0] = 0
        hyps = [""] * len(data)
        start = time.perf_counter()
        options = t.options.with_(pack_files=gap is not None)
        for i, r in many.transcribe_many(t.engine, [c["audio"] for c in data], options, group=8,
                                         read=lambda a: a):
            hyps[i] = norm(r.text)
        seconds = time.perf_counter() - start
        score = scores(refs, hyps, data)
        per_kind = score["wer_by_kind"]
        label = "no packing (each clip its own window)" if gap is None else f"packed, {gap:g} s gap"
        row = {"gap_s": gap, "label": label, "wer": score["wer"], "wer_by_kind": per_kind, "seconds": seconds,
               "parts_decoded_again": redecoded[0], "worst_clip_wer": score["worst_clip_wer"], "hyps": hyps,
               "clip_wer": score["clip_wer"]}
        rows.append(row)
        print(f"{row['label']}: WER {row['wer'] * 100:.2f}% in {seconds:.1f} s, {redecoded[0]} again; "
              + " ".join(f"{k} {v * 100:.2f}%" for k, v in per_kind.items()), file=sys.stderr)
    anchor = rows[0]
    for r in rows:
        r["speedup_vs_anchor"] = anchor["seconds"] / r["seconds"]
        r["wer_diff_points"] = (r["wer"] - anchor["wer"]) * 100
        r["clips_worse_than_anchor"] = sum(a < b for a, b in zip(anchor["clip_wer"], r["clip_wer"], strict=True))
        r["clips_better_than_anchor"] = sum(a > b for a, b in zip(anchor["clip_wer"], r["clip_wer"], strict=True))
    report = {"machine": describe(), "model": "tiny.en", "precision": "int8", "beam_size": args.beam_size,
              "threads": args.threads, "clips": len(data),
              "kinds": {k: sum(c["kind"] == k for c in data) for k in kinds},
              "lengths_s": [round(x, 2) for x in lengths], "references": [c["text"] for c in data], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))


def markdown(report: dict) -> str:
    kinds = list(report["kinds"])
    head = ("| windows | WER % | " + " | ".join(f"{k} ({report['kinds'][k]})" for k in kinds)
            + " | clips worse / better | parts decoded again | time s | speed vs no packing |")
    lines = [head, "|" + "---|" * (7 + len(kinds) - 1)]
    for r in report["rows"]:
        lines.append(f"| {r['label']} | {r['wer'] * 100:.2f} | "
                     + " | ".join(f"{r['wer_by_kind'][k] * 100:.2f}" for k in kinds)
                     + f" | {r['clips_worse_than_anchor']} / {r['clips_better_than_anchor']}"
                     + f" | {r['parts_decoded_again']} | {r['seconds']:.1f} | {r['speedup_vs_anchor']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
