#!/usr/bin/env python
"""Server throughput and latency under concurrent clients, batching on against batching off.

A fresh `leanspeech serve` per mode (loopback only), clips of 5-20 s of Piper speech, and for
each concurrency a bounded number of requests (each client sends --requests clips one after
another; every level is capped at --max-seconds). Reports throughput in audio seconds per
wall second, p50 and p95 latency, and the server's peak RSS (sampled with psutil). The anchor
is the same server with batching off, measured in the same run.

    python benchmarks/server_load.py                  # 1, 4, 8, 16 clients
    python benchmarks/server_load.py --clients 1,8 --requests 2
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


def clips() -> list[tuple[bytes, float]]:
    """Eight clips of 2-6 corpus sentences (about 5-20 s)."""
    from leanspeech.audio import decode_audio
    from leanspeech.bench.corpus import sentences_clip

    out = []
    for i, count in enumerate((2, 3, 4, 5, 6, 2, 4, 6)):
        path, _ = sentences_clip(count=count, start=i * 7, pause=0.4)
        out.append((path.read_bytes(), decode_audio(path).shape[0] / 16000))
    return out


def start_server(batching: bool, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__BATCHING": str(batching).lower(),
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
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds
    errors = 0

    def client(k: int):
        nonlocal audio, errors
        with httpx.Client(timeout=300) as http:
            for j in range(requests):
                if time.perf_counter() > deadline:
                    return
                body, seconds = data[(k + j) % len(data)]
                t = time.perf_counter()
                r = http.post(url + "/v1/audio/transcriptions", files={"file": ("clip.wav", body, "audio/wav")})
                elapsed = time.perf_counter() - t
                with lock:
                    if r.status_code == 200:
                        latencies.append(elapsed)
                        audio += seconds
                    else:
                        errors += 1

    with PeakRSS(pid) as peak:
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.perf_counter() - start
    latencies.sort()
    return {
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
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--requests", type=int, default=3, help="requests per client per level")
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "server_load_cpu.json")
    args = parser.parse_args()
    from leanspeech.bench.machine import describe

    data = clips()
    levels = [int(c) for c in args.clients.split(",")]
    modes = {}
    for batching in (False, True):
        proc, url = start_server(batching, args.threads)
        try:
            # one warm-up request so that first-call costs are not in the figures
            files = {"file": ("w.wav", data[0][0], "audio/wav")}
            httpx.post(url + "/v1/audio/transcriptions", files=files, timeout=300)
            rows = []
            for c in levels:
                before = metric_batches(url)
                row = level(url, proc.pid, c, args.requests, data, args.max_seconds)
                after = metric_batches(url)
                calls = after.get("leanspeech_batch_size_count", 0) - before.get("leanspeech_batch_size_count", 0)
                windows = after.get("leanspeech_batch_size_sum", 0) - before.get("leanspeech_batch_size_sum", 0)
                row["mean_batch"] = windows / calls if calls else 0.0
                rows.append(row)
                print(
                    f"batching={batching} clients={c}: {row['throughput']:.1f} audio s/s, p50 {row['p50_s']:.2f} s, "
                    f"p95 {row['p95_s']:.2f} s, mean batch {row['mean_batch']:.1f}",
                    file=sys.stderr,
                )
            modes["on" if batching else "off"] = rows
        finally:
            proc.terminate()
            proc.wait(60)
    table = [
        "| clients | batching off: audio s/s | p50 s | p95 s | batching on: audio s/s | p50 s | p95 s | mean batch "
        "| throughput ratio | p95 ratio | peak RSS on/off MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for off, on in zip(modes["off"], modes["on"], strict=False):
        table.append(
            f"| {on['clients']} | {off['throughput']:.1f} | {off['p50_s']:.2f} | {off['p95_s']:.2f} | "
            f"{on['throughput']:.1f} | {on['p50_s']:.2f} | {on['p95_s']:.2f} | {on['mean_batch']:.1f} | "
            f"{on['throughput'] / off['throughput']:.2f}x | {on['p95_s'] / off['p95_s']:.2f}x | "
            f"{on['peak_rss'] / 2**20:.0f} / {off['peak_rss'] / 2**20:.0f} |"
        )
    report = {
        "benchmark": "server_load",
        "command": "python benchmarks/server_load.py " + " ".join(sys.argv[1:]),
        "model": "tiny.en",
        "precision": "auto (int8 on CPU)",
        "beam_size": 5,
        "threads": args.threads,
        "clips_s": [round(s, 1) for _, s in data],
        "requests_per_client": args.requests,
        "anchor": "same server, batching off",
        "machine": describe(),
        "modes": modes,
        "markdown": "\n".join(table),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["markdown"])


if __name__ == "__main__":
    main()
