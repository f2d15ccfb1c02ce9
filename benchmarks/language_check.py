#!/usr/bin/env python
"""What telling each speech chunk's language costs on English-only audio, and what it buys on
a file that switches language.

With no language given, a multilingual model now checks every window's speech chunks on the
window's own encoder frames and cuts the window where the language changes
(``decode_loop.encode_checked``). Before, the first window's language was kept for the file,
so a switch to German came back translated or dropped. Configurations, each in a fresh
process, base int8, beam 5:

- ``language=en`` given: no detection at all (the anchor: the cheapest possible);
- ``no language (the default: each chunk checked)``;
- ``no language, first window's kept (before)``: the check turned off;
- ``multilingual=true``: every chunk's language detected before planning, on its own audio.

English-only audio of both kinds (Piper speech with pauses, and continuous), and the
English-then-German clip of the tests (which languages each configuration gives back).

    python benchmarks/language_check.py --out benchmarks/results/language_check_cpu.json
    python benchmarks/language_check.py --out benchmarks/results/language_check_cpu_run2.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "language=en given (the anchor)": {"language": "en"},
    "no language (the default: each chunk checked)": {},
    "no language, first window's kept (before)": {"_no_check": True},
    "multilingual=true (each chunk detected first)": {"multilingual": True},
}
ANCHOR = "language=en given (the anchor)"
BEFORE = "no language, first window's kept (before)"


def child(path: str, config: str, threads: int, repeat: int) -> None:
    from leanspeech import Transcriber
    from leanspeech.memory import peak_rss_lifetime

    options = dict(json.loads(config))
    if options.pop("_no_check", False):
        import leanspeech.stt.decode_loop as loop

        loop.checks_language = lambda engine, options: False  # the loop before the check

    with Transcriber("base", precision="int8", cpu_threads=threads) as t:
        times, result = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            result = t.transcribe(path, **options)
            times.append(time.perf_counter() - started)
    assert result is not None
    print(json.dumps({"seconds": statistics.median(times), "times": times, "text": result.text,
                      "languages": [s.language for s in result.segments], "peak_rss": peak_rss_lifetime(),
                      "duration": result.info.duration}))


def run(path: Path, config: dict, threads: int, repeat: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", str(path), json.dumps(config), str(threads),
                           str(repeat)], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="transcriptions per process (the median is kept)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "language_check_cpu.json")
    args = ap.parse_args()
    from leanspeech.measure.corpus import SENTENCES, long_form
    from leanspeech.measure.corpus_languages import LANGUAGE_SENTENCES, clip
    from leanspeech.measure.machine import describe
    from leanspeech.measure.scoring import wer

    audios = {"pauses": long_form(args.minutes), "continuous": long_form(args.minutes, continuous=True)}
    mixed, _ = clip([("en", list(SENTENCES[:2])), ("de", list(LANGUAGE_SENTENCES["de"][:3]))], name="mix-en-de")
    report: dict = {"command": " ".join(["python", "benchmarks/language_check.py", *sys.argv[1:]]),
                    "machine": describe(), "threads": args.threads, "repeat": args.repeat, "model": "base int8",
                    "minutes": args.minutes, "rows": [], "mixed": []}
    for kind, (path, reference) in audios.items():
        outs = {name: run(path, config, args.threads, args.repeat) for name, config in CONFIGS.items()}
        anchor, before = outs[ANCHOR]["seconds"], outs[BEFORE]["seconds"]
        for name, out in outs.items():
            row = {"audio": kind, "config": name, "seconds": out["seconds"], "times": out["times"],
                   "vs_anchor": out["seconds"] / anchor, "vs_before": out["seconds"] / before,
                   "wer": wer(reference, out["text"]),
                   "not_english": sum(1 for lang in out["languages"] if lang != "en"),
                   "segments": len(out["languages"]), "peak_rss": out["peak_rss"], "duration": out["duration"]}
            report["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
    for name, config in CONFIGS.items():
        if name == ANCHOR:
            continue
        out = run(mixed, config, args.threads, 1)
        report["mixed"].append({"config": name, "languages": list(dict.fromkeys(out["languages"])),
                                "text": out["text"]})
    lines = ["| audio | configuration | seconds | against the anchor | against before | WER % | "
             "segments not in English | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['audio']} | {r['config']} | {r['seconds']:.2f} | {r['vs_anchor']:.3f}x | "
                     f"{r['vs_before']:.3f}x | "
                     f"{r['wer'] * 100:.2f} | {r['not_english']} of {r['segments']} | {r['peak_rss'] / 2**20:.0f} |")
    lines += ["", "| English, then German (no language given) | languages back | text |", "|---|---|---|"]
    for m in report["mixed"]:
        lines.append(f"| {m['config']} | {', '.join(m['languages'])} | {m['text'][:160]} |")
    report["markdown"] = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(report["markdown"])


if __name__ == "__main__":
    main()
