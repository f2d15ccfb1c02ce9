#!/usr/bin/env python
"""Text-to-speech at each precision: disk bytes, peak RSS, real-time factor, time to the first
audio byte of a 500-character input (streaming, encoded as pcm), and round-trip WER (the
bundled tiny.en transcribes the speech). Each precision runs in a fresh process; its variant
is made beforehand so that making it is not measured.

    python benchmarks/tts.py --repeat 3
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

TEXT = ("The morning train to the coast leaves at half past seven, and the station is already busy. "
        "Our neighbors planted a row of tall sunflowers along the fence last spring. The library closes "
        "early on Sundays during the summer, so plan your visit for the morning. A cold wind came down from "
        "the hills after sunset, and the children counted the boats that sailed into the harbor. Please turn "
        "off the lights when you leave the kitchen. The baker opens his shop before the sun comes up, "
        "and we will paint the fence white.")


def child(precision: str, model_dir: str, repeat: int) -> None:
    from leanspeech.tts import Synthesizer
    from leanspeech.tts.encode import encode_stream

    synth = Synthesizer(precision=precision, model_dir=model_dir)
    list(synth.stream("Warm up."))
    ttfb, walls, audio = [], [], None
    for _ in range(repeat):
        start = time.perf_counter()
        parts = []
        first = None
        for _data in encode_stream(_tee(synth.stream(TEXT), parts), "pcm", synth.sample_rate):
            if first is None:
                first = time.perf_counter() - start
        walls.append(time.perf_counter() - start)
        ttfb.append(first)
        audio = parts
    import numpy as np

    pcm = np.concatenate(audio)
    out = Path(model_dir) / f"tts-{precision}.wav"
    out.parent.mkdir(parents=True, exist_ok=True)
    import wave

    with wave.open(str(out), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(synth.sample_rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    seconds = pcm.shape[0] / synth.sample_rate
    print(json.dumps({"precision": precision, "disk_bytes": synth.disk_bytes, "audio_s": seconds,
                      "wall_s": statistics.median(walls), "ttfb_s": statistics.median(ttfb),
                      "peak_rss": peak_rss_lifetime(), "wav": str(out)}))


def _tee(stream, sink):
    for pcm in stream:
        sink.append(pcm)
        yield pcm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child")
    parser.add_argument("--model-dir", default=str(Path.home() / ".cache" / "leanspeech" / "models"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tts_cpu.json")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model_dir, args.repeat)
        return
    from leanspeech import Transcriber
    from leanspeech.measure.machine import command, describe
    from leanspeech.measure.scoring import wer
    from leanspeech.tts.synthesizer import resolve_tts_precision
    from leanspeech.tts.variants import make_variant
    from leanspeech.tts.voices import resolve_voice

    voice = resolve_voice("en_US-joe-medium")
    rows = []
    for precision in ("float32", "float16", "int8"):
        make_variant(voice, precision, Path(args.model_dir))
        proc = subprocess.run([sys.executable, __file__, "--child", precision, "--model-dir", args.model_dir,
                               "--repeat", str(args.repeat)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            rows.append({"precision": precision, "ok": False, "error": proc.stderr.strip().splitlines()[-1][:300]})
            continue
        row = {"ok": True, **json.loads(proc.stdout.strip().splitlines()[-1])}
        row["x_real_time"] = row["audio_s"] / row["wall_s"]
        rows.append(row)
        print(
            f"{precision}: {row['x_real_time']:.1f}x real time, first byte {row['ttfb_s'] * 1000:.0f} ms",
            file=sys.stderr,
        )
    with Transcriber("tiny.en", precision="int8", cpu_threads=2) as stt:
        for row in rows:
            if row["ok"]:
                row["round_trip_wer"] = wer(TEXT, stt.transcribe(row["wav"]).text)
    auto = resolve_tts_precision("auto").precision
    base = next((r for r in rows if r["precision"] == "float32" and r["ok"]), None)
    lines = [
        "| precision | disk MB | vs float32 | peak RSS MiB | x real time | first audio byte ms (500 chars) "
        "| round-trip WER % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["ok"]:
            lines.append(f"| {r['precision']} | failed: {r['error']} |  |  |  |  |  |")
            continue
        lines.append(
            f"| {r['precision']}{' (auto)' if r['precision'] == auto else ''} | {r['disk_bytes'] / 1e6:.1f} | "
            f"{(base['disk_bytes'] / r['disk_bytes']) if base else 0:.1f}x smaller | {r['peak_rss'] / 2**20:.0f} "
            f"| {r['x_real_time']:.1f} | "
            f"{r['ttfb_s'] * 1000:.0f} | {r['round_trip_wer'] * 100:.1f} |".replace("1.0x smaller", "-")
        )
    report = {
        "benchmark": "tts",
        "command": command(),
        "voice": voice.name,
        "text_chars": len(TEXT),
        "auto": auto,
        "repeat": args.repeat,
        "machine": describe(),
        "rows": rows,
        "markdown": "\n".join(lines),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["markdown"])


if __name__ == "__main__":
    main()
