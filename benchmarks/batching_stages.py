#!/usr/bin/env python
"""Where a server request's CPU time goes, and what batching can save of it.

One clip of Piper speech (3 corpus sentences, ~10.5 s), tiny.en, the server's decoding
options (beam 5, no timestamp tokens). Times the encoder on one window at full Whisper
context (3000 mel frames, what faster-whisper and leanspeech feed it) and at shorter inputs
(CTranslate2 accepts them; Whisper was trained on 30 s), then ``generate`` on 1, 2, 4 and 8
copies of the encoder output in one call. Each figure is the best of --repeat runs. The
anchor is batch 1 in the same run: ``speed-up`` is per-item time at batch 1 over per-item
time at batch N; ``request ceiling`` is what batching can give a whole request (encode +
decode) at that batch size, with the encoder unbatched. The process's peak RSS after each
batch size (smallest first) tells what one more window in a decode batch costs in memory.

    python benchmarks/batching_stages.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "batching_stages_cpu.json")
    args = parser.parse_args()

    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    from leanspeech.audio import decode_audio
    from leanspeech.measure.corpus import sentences_clip
    from leanspeech.measure.machine import command, describe
    from leanspeech.memory import peak_rss_lifetime
    from leanspeech.models.store import resolve_model
    from leanspeech.stt.ct2_engine import CT2Engine
    from leanspeech.stt.options import TranscribeOptions
    from leanspeech.stt.windows import Window

    engine = CT2Engine.load(resolve_model(args.model, offline=True), precision=args.precision,
                                cpu_threads=args.threads)
    path, _ = sentences_clip(count=3, start=0, pause=0.4)
    audio = decode_audio(path)
    tokenizer = engine.tokenizer("en", "transcribe")
    options = TranscribeOptions(beam_size=args.beam_size, without_timestamps=True, language="en")
    prompt = engine.model.get_prompt(tokenizer, [], without_timestamps=True)
    mel = engine.model.feature_extractor(audio)[..., :-1]

    encoder = {}
    for frames in (3000, 2000, 1100):  # 30 s, 20 s, and just the clip (~11 s)
        features = np.ascontiguousarray(pad_or_trim(mel, frames)[None])
        encoder[frames] = round(best(lambda f=features: engine.model.model.encode(
            ctranslate2.StorageView.from_array(f), to_cpu=True), args.repeat), 4)
        print(f"encoder, {frames} frames: {encoder[frames]:.3f} s", flush=True)

    encoded = engine.encode(Window.of(audio))  # full context, as the server does
    limit = engine.max_length(audio.shape[0] / 16000, len(prompt))  # what a window of the clip may generate
    decode = {}
    peaks = {}  # the process's peak RSS after each batch size, smallest first
    for batch in (1, 2, 4, 8):
        seconds = best(lambda b=batch: engine._generate([encoded] * b, [prompt] * b, options, 0.0, limit),
                       args.repeat)
        decode[batch] = round(seconds, 4)
        peaks[batch] = peak_rss_lifetime()
        print(f"generate, batch {batch}: {seconds:.3f} s ({seconds / batch:.3f} s per item), "
              f"peak {peaks[batch] / 2**20:.0f} MiB", flush=True)
    # what one more window in a batch adds to the peak, from batch 4 to 8
    per_window_mib = round((peaks[8] - peaks[4]) / 4 / 2**20, 1)
    print(f"each window from batch 4 to 8 raised the peak by {per_window_mib} MiB")

    enc = encoder[3000]
    rows = []
    for batch, seconds in decode.items():
        per_item = seconds / batch
        rows.append({"batch": batch, "generate_s": seconds, "per_item_s": round(per_item, 4),
                     "peak_rss_mib": round(peaks[batch] / 2**20, 1),
                     "decode_speedup": round(decode[1] / per_item, 2),
                     "request_ceiling": round((enc + decode[1]) / (enc + per_item), 2)})
    lines = ["| batch | generate s | per item s | decode speed-up | request ceiling |", "|---|---|---|---|---|"]
    lines += [f"| {r['batch']} | {r['generate_s']:.3f} | {r['per_item_s']:.3f} | {r['decode_speedup']:.2f}x | "
              f"{r['request_ceiling']:.2f}x |" for r in rows]
    markdown = "\n".join(lines)
    print(markdown)
    result = {"benchmark": "batching_stages", "command": command(), "machine": describe(),
              "model": args.model,
              "precision": engine.resolution.compute_type, "threads": args.threads, "beam_size": args.beam_size,
              "clip_s": round(audio.shape[0] / 16000, 2), "encoder_s_by_frames": encoder, "rows": rows,
              "peak_per_window_mib_batch_4_to_8": per_window_mib,
              "markdown": markdown}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
