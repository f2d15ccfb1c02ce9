#!/usr/bin/env python
"""Does a shorter encoder input lose words? WER per padding length on 100+ short clips.

Whisper was trained on 30-second windows: a short clip is padded with silence to 30 s and the
encoder pays for all of it (on CPU its cost is linear in its input). ``CT2Engine.encoder_pad_s``
gives the encoder only the clip plus that padding, rounded up to 5 s. This measures, in one
run, the corpus WER and the transcription time of every clip at each padding against the
full 30 s (the anchor), on four kinds of speech:

- ``piper``: the bundled Piper voice, 1-4 corpus sentences (2-16 s);
- ``espeak``: espeak-ng's English voices (a formant synthesizer, unlike the training data);
- ``jfk``: the real JFK recording and its parts, clean;
- ``jfk-noise``: the same with white noise at 20 and 10 dB SNR.

    python benchmarks/encoder_padding.py --out benchmarks/results/encoder_padding_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PADDINGS = [None, 10.0, 5.0, 2.0, 0.0]  # None: Whisper's 30 s (the anchor)
ESPEAK_VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3"]
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, ask what you can do for "
            "your country.")
# JFK's parts (seconds, cut in its pauses, found with word timestamps): what each says
JFK_PARTS = [((0.0, 2.9), "And so my fellow Americans,"), ((2.9, 8.0), "ask not what your country can do for you,"),
             ((8.0, 11.0), "ask what you can do for your country."),
             ((0.0, 8.0), "And so my fellow Americans, ask not what your country can do for you,")]


def _espeak(text: str, voice: str) -> np.ndarray:
    import subprocess
    import tempfile

    from leanspeech.audio import decode_audio

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True, capture_output=True)
        return decode_audio(out)


def clips() -> list[dict]:
    from leanspeech.audio import decode_audio
    from leanspeech.measure.corpus import SENTENCES, sentences_clip

    out = []
    start = 0
    for i in range(56):  # Piper: 1-4 sentences, cycling through the corpus
        count = 1 + i % 4
        path, text = sentences_clip(count=count, start=start % (len(SENTENCES) - count), pause=0.4)
        out.append({"kind": "piper", "audio": decode_audio(path), "text": text})
        start += count
    for i in range(30):  # espeak-ng: 1-2 sentences, five voices
        voice = ESPEAK_VOICES[i % len(ESPEAK_VOICES)]
        sentences = [SENTENCES[(3 * i + k) % len(SENTENCES)] for k in range(1 + i % 2)]
        parts = [_espeak(s, voice) for s in sentences]
        audio = np.concatenate([np.concatenate([p, np.zeros(6400, np.float32)]) for p in parts])
        out.append({"kind": "espeak", "audio": audio, "text": " ".join(sentences)})
    jfk = decode_audio(Path(__file__).resolve().parents[2] / "shared" / "data" / "jfk.flac")
    real = [(jfk, JFK_TEXT)] + [(jfk[int(a * 16000):int(b * 16000)], t) for (a, b), t in JFK_PARTS]
    for audio, text in real:
        out.append({"kind": "jfk", "audio": audio, "text": text})
    rng = np.random.default_rng(1961)
    for snr in (20, 10):
        for audio, text in real:
            noise = rng.standard_normal(audio.shape[0]).astype(np.float32)
            noise *= np.sqrt(np.mean(audio**2) / (10 ** (snr / 10))) / max(1e-9, float(np.sqrt(np.mean(noise**2))))
            out.append({"kind": "jfk-noise", "audio": np.clip(audio + noise, -1, 1).astype(np.float32),
                        "text": text})
    return out


def scores(refs: list[str], hyps: list[str], data: list[dict]) -> dict:
    """Corpus WER, WER per kind of speech and per clip (normalized texts), as the rows hold them."""
    import jiwer

    kinds = sorted({c["kind"] for c in data})
    per_kind = {k: jiwer.wer([r for r, c in zip(refs, data, strict=True) if c["kind"] == k],
                             [h for h, c in zip(hyps, data, strict=True) if c["kind"] == k]) for k in kinds}
    clip_wer = [jiwer.wer(r, h) for r, h in zip(refs, hyps, strict=True)]
    return {"wer": jiwer.wer(refs, hyps), "wer_by_kind": per_kind, "worst_clip_wer": max(clip_wer),
            "clip_wer": clip_wer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encoder_padding_cpu.json")
    args = parser.parse_args()

    from whisper_normalizer.english import EnglishTextNormalizer

    from leanspeech import Transcriber
    from leanspeech.measure.machine import describe

    norm = EnglishTextNormalizer()
    data = clips()
    lengths = [c["audio"].shape[0] / 16000 for c in data]
    print(f"{len(data)} clips, {min(lengths):.1f}-{max(lengths):.1f} s", file=sys.stderr)
    t = Transcriber("tiny.en", device="cpu", precision="int8", cpu_threads=args.threads, beam_size=args.beam_size,
                    batch_size=8)
    t.transcribe(data[0]["audio"])  # warm-up
    rows = []
    kinds = sorted({c["kind"] for c in data})
    for pad in PADDINGS:
        t.engine.encoder_pad_s = pad
        hyps, seconds = [], 0.0
        for c in data:
            start = time.perf_counter()
            hyps.append(norm(t.transcribe(c["audio"]).text))
            seconds += time.perf_counter() - start
        refs = [norm(c["text"]) for c in data]
        score = scores(refs, hyps, data)
        per_kind = score["wer_by_kind"]
        row = {"padding_s": pad, "label": "30 s (Whisper's window)" if pad is None else f"clip + {pad:g} s",
               "wer": score["wer"], "wer_by_kind": per_kind, "seconds": seconds, "clips_worse_than_anchor": None,
               "worst_clip_wer": score["worst_clip_wer"], "hyps": hyps, "clip_wer": score["clip_wer"]}
        rows.append(row)
        print(f"{row['label']}: WER {row['wer'] * 100:.2f}% in {seconds:.1f} s "
              + " ".join(f"{k} {v * 100:.2f}%" for k, v in per_kind.items()), file=sys.stderr)
    anchor = rows[0]
    for r in rows:
        r["speedup_vs_anchor"] = anchor["seconds"] / r["seconds"]
        r["wer_diff_points"] = (r["wer"] - anchor["wer"]) * 100
        r["clips_worse_than_anchor"] = sum(a < b for a, b in zip(anchor["clip_wer"], r["clip_wer"], strict=True))
    report = {"machine": describe(), "model": "tiny.en", "precision": "int8", "beam_size": args.beam_size,
              "threads": args.threads, "clips": len(data),
              "kinds": {k: sum(c["kind"] == k for c in data) for k in kinds},
              "lengths_s": [round(x, 2) for x in lengths], "references": [c["text"] for c in data], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))


def markdown(report: dict) -> str:
    kinds = list(report["kinds"])
    head = "| encoder input | WER % | " + " | ".join(f"{k} ({report['kinds'][k]})" for k in kinds) + \
        " | clips worse | time s | speed vs 30 s |"
    lines = [head, "|" + "---|" * (6 + len(kinds) - 1)]
    for r in report["rows"]:
        lines.append(f"| {r['label']} | {r['wer'] * 100:.2f} | "
                     + " | ".join(f"{r['wer_by_kind'][k] * 100:.2f}" for k in kinds)
                     + f" | {r['clips_worse_than_anchor']} | {r['seconds']:.1f} | {r['speedup_vs_anchor']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
