#!/usr/bin/env python
"""Legitimate traffic on one server, quiet and then beside hostile clients.

One ``leanspeech serve`` on loopback (tiny.en int8, the bundled voice, an API key, a memory
budget, Wyoming on). For ``--phase-s`` seconds the legitimate clients run alone (quiet),
then for as long again beside the hostile ones (hostile):

legitimate: OpenAI REST transcriptions of JFK (honouring Retry-After), OpenAI REST speech,
one WhisperLive session and one Realtime session streaming JFK at real-time pace, and one
Wyoming client (a connection per utterance, as a Home Assistant satellite);

hostile, all at once: WebSockets without the key on the live port's `/` and `/ui/x`, two hours
of stereo silence as FLAC with `channels=split` (over the server's duration limit), six idle
Wyoming connections (reopened when closed), a WhisperLive flood at 20x real time, a Realtime
commit loop, deep JSON on WhisperLive, Realtime and Wyoming, Wyoming payloads that claim
10 GB, and live clients that vanish mid-session without a close.

Reports, per phase: each legitimate client's success rate and p50/p95 latency, the server's
peak RSS (sampled with psutil every 20 ms) against its budget plus a stated margin, and the
tracebacks in its log. The anchor is the quiet phase of the same run.

    python benchmarks/hostile.py --out benchmarks/results/hostile_cpu.json
    python benchmarks/hostile.py --phase-s 30 --out /tmp/h.json     # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
import psutil

KEY = "benchmark-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
BUDGET = "512MiB"
MARGIN_MIB = 256  # what the budget does not count: Python, the web stack, buffers, VAD, decode scratch
SPEECH = "The quick brown fox jumps over the lazy dog. Then it rests in the shade."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, log_path: Path):
        self.port, self.live_port = free_port(), free_port()
        self.stt_port, self.tts_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__API_KEY": KEY,
               "LEANSPEECH_MEMORY__BUDGET": BUDGET, "LEANSPEECH_SERVER__MAX_AUDIO_SECONDS": "1800",
               "LEANSPEECH_LIVE__MAX_CLIENTS": "6", "LEANSPEECH_LIVE__PORT": str(self.live_port),
               "LEANSPEECH_WYOMING__STT_PORT": str(self.stt_port), "LEANSPEECH_WYOMING__TTS_PORT": str(self.tts_port),
               "LEANSPEECH_STT__CPU_THREADS": "2"}
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise SystemExit("the server did not start:\n" + self.text()[-3000:])

    def text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class Peak:
    def __init__(self, pid: int):
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def take(self) -> int:
        """The peak since the last take, and start again."""
        peak, self.peak = self.peak, 0
        return peak


# ---- legitimate clients ------------------------------------------------------------------

class Log:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
        self.why: dict[str, list[str]] = defaultdict(list)  # what each failure was told
        self.lock = threading.Lock()

    def add(self, client: str, ok: bool, latency: float | None, why: str = "") -> None:
        with self.lock:
            self.rows[client].append((ok, latency))
            if not ok:
                self.why[client].append(why[:300])


def heard(text: str) -> bool:
    return "country" in text.lower()


def rest_stt(srv: Server, jfk: bytes, log: Log, until: float) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        ok = False
        for _ in range(20):  # a client that honours Retry-After, as the openai SDK does
            r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("jfk.flac", jfk)},
                           data={"model": "whisper-1"}, headers=AUTH, timeout=300)
            if r.status_code != 429:
                ok = r.status_code == 200 and heard(r.json()["text"])
                break
            time.sleep(float(r.headers.get("retry-after", 1)))
        log.add("REST transcription", ok, time.monotonic() - start)
        time.sleep(0.5)


def rest_tts(srv: Server, log: Log, until: float) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        ok = False
        for _ in range(20):
            r = httpx.post(srv.url + "/v1/audio/speech", json={"input": SPEECH, "response_format": "wav"},
                           headers=AUTH, timeout=300)
            if r.status_code != 429:
                ok = r.status_code == 200 and len(r.content) > 10000
                break
            time.sleep(float(r.headers.get("retry-after", 1)))
        log.add("REST speech", ok, time.monotonic() - start)
        time.sleep(0.5)


def whisperlive(srv: Server, audio: np.ndarray, log: Log, until: float) -> None:
    """JFK and a second of silence, again and again at real-time pace; each completed segment's
    latency runs from the moment its last audio was sent."""
    from websockets.sync.client import connect

    step = 1600
    sent_at: list[float] = []  # wall time each frame went
    done: set[str] = set()
    texts: list[str] = []
    with connect(f"ws://127.0.0.1:{srv.live_port}/", additional_headers=AUTH, open_timeout=60) as ws:
        ws.send(json.dumps({"uid": "legit", "language": "en", "model": "tiny.en"}))
        json.loads(ws.recv(timeout=60))

        def read() -> None:
            try:
                while True:
                    message = json.loads(ws.recv())
                    now = time.monotonic()
                    for seg in message.get("segments", ()):
                        if seg["completed"] and seg["start"] not in done:
                            done.add(seg["start"])
                            texts.append(seg["text"])
                            frame = min(len(sent_at) - 1, int(float(seg["end"]) * 10))
                            log.add("WhisperLive segment", True, now - sent_at[frame] if frame >= 0 else None)
            except Exception:  # noqa: BLE001 - closed
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        i = 0
        t0 = time.monotonic()
        while time.monotonic() < until:
            frame = audio[(i * step) % len(audio):][:step]
            if len(frame) < step:
                frame = np.concatenate([frame, audio[:step - len(frame)]])
            sent_at.append(time.monotonic())
            ws.send(frame.astype("<f4").tobytes())
            i += 1
            time.sleep(max(0.0, t0 + i * 0.1 - time.monotonic()))
        ws.send(b"END_OF_AUDIO")
        reader.join(60)
    log.add("WhisperLive session", heard(" ".join(texts)) and ws.close_code == 1000, None)


def realtime(srv: Server, audio24: np.ndarray, log: Log, until: float) -> None:
    """A Realtime session (server VAD): each item's latency runs from speech_stopped."""
    from websockets.sync.client import connect

    stopped: dict[str, float] = {}
    outcome: dict[str, bool] = {}
    with connect(f"ws://127.0.0.1:{srv.port}/v1/realtime?intent=transcription", additional_headers=AUTH,
                 open_timeout=60) as ws:
        def read() -> None:
            try:
                while True:
                    event = json.loads(ws.recv())
                    kind, item = event["type"], event.get("item_id")
                    if kind == "input_audio_buffer.speech_stopped":
                        stopped[item] = time.monotonic()
                    elif kind == "conversation.item.input_audio_transcription.completed":
                        outcome[item] = True  # server VAD cuts JFK at its pauses: a short item may hold no word
                        log.add("Realtime item", outcome[item], time.monotonic() - stopped.get(item, time.monotonic()))
                    elif kind == "conversation.item.input_audio_transcription.failed":
                        outcome[item] = False
                        log.add("Realtime item", False, None)
            except Exception:  # noqa: BLE001 - closed
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        step, i, t0 = 2400, 0, time.monotonic()
        while time.monotonic() < until:
            chunk = audio24[(i * step) % len(audio24):][:step]
            ws.send(json.dumps({"type": "input_audio_buffer.append",
                                "audio": base64.b64encode(chunk.astype("<i2").tobytes()).decode()}))
            i += 1
            time.sleep(max(0.0, t0 + i * 0.1 - time.monotonic()))
        time.sleep(8)  # the last items complete
    for _ in set(stopped) - set(outcome):  # committed, never answered
        log.add("Realtime item", False, None)


def wyoming(srv: Server, audio: np.ndarray, log: Log, until: float) -> None:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    data = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    async def one() -> tuple[bool, float, str]:
        async with AsyncTcpClient("127.0.0.1", srv.stt_port) as c:
            await c.write_event(Transcribe(language="en").event())
            await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for i in range(0, len(data), 3200):  # 100 ms chunks at real-time pace, as a satellite sends
                await c.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=data[i:i + 3200]).event())
                await asyncio.sleep(0.1)
            await c.write_event(AudioStop().event())
            stop = time.monotonic()
            while True:
                event = await asyncio.wait_for(c.read_event(), 120)
                if event is None or event.type == "error":
                    return False, time.monotonic() - stop, json.dumps(event.data if event else None)
                if event.type == "transcript":
                    return heard(event.data.get("text", "")), time.monotonic() - stop, event.data.get("text", "")

    while time.monotonic() < until:
        try:
            ok, latency, why = asyncio.run(one())
        except Exception as exc:  # noqa: BLE001
            ok, latency, why = False, None, repr(exc)
        log.add("Wyoming utterance", ok, latency, why)
        time.sleep(1.0)


# ---- hostile clients ---------------------------------------------------------------------

def hostile(srv: Server, jfk16: np.ndarray, audio24: np.ndarray, until: float, counts: dict) -> list[threading.Thread]:
    from websockets.sync.client import connect

    from leanspeech.measure.corpus import encoded_silence

    flac = encoded_silence(7200)  # two hours of stereo silence as FLAC

    def loop(name, fn):
        def run():
            while time.monotonic() < until:
                try:
                    fn()
                    counts[name] = counts.get(name, 0) + 1
                except Exception:  # noqa: BLE001 - refused or closed: that is the point
                    counts[name] = counts.get(name, 0) + 1
                time.sleep(1.0)  # each attack again every second: the attacks, not a request flood (README)
        return threading.Thread(target=run, daemon=True, name=name)

    def keyless():
        for path in ("/", "/ui/x"):
            try:
                with connect(f"ws://127.0.0.1:{srv.live_port}{path}", open_timeout=10) as ws:
                    ws.send(json.dumps({"uid": "x", "language": "en"}))
                    ws.recv(timeout=5)
                    counts["keyless_served"] = counts.get("keyless_served", 0) + 1
            except Exception:  # noqa: BLE001
                pass

    def long_upload():
        r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("s.flac", flac)},
                       data={"model": "whisper-1", "channels": "split"}, headers=AUTH, timeout=300)
        counts.setdefault("long_upload_status", []).append(r.status_code)

    def idle_wyoming():
        async def hold():
            writers = []
            for _ in range(6):
                reader, writer = await asyncio.open_connection("127.0.0.1", srv.stt_port)
                writer.write(b'{"type": "transcribe", "data": {"language": "en"}}\n'
                             b'{"type": "audio-start", "data": {"rate": 16000, "width": 2, "channels": 1}}\n')
                await writer.drain()
                writers.append((reader, writer))
            for reader, _ in writers:  # until the server closes each (idle timeout or eviction)
                await asyncio.wait_for(reader.read(), max(1.0, until - time.monotonic()))
        try:
            asyncio.run(hold())
        except Exception:  # noqa: BLE001
            pass

    def flood():  # WhisperLive at 20x real time
        with connect(f"ws://127.0.0.1:{srv.live_port}/", additional_headers=AUTH, open_timeout=30) as ws:
            ws.send(json.dumps({"uid": "flood", "language": "en"}))
            ws.recv(timeout=30)
            frame = np.tile(jfk16, 2)[:16000].astype("<f4").tobytes()
            for _ in range(600):
                ws.send(frame)
                time.sleep(0.05)

    def commit_loop():
        chunk = base64.b64encode(audio24[:24000].astype("<i2").tobytes()).decode()
        with connect(f"ws://127.0.0.1:{srv.port}/v1/realtime?intent=transcription", additional_headers=AUTH,
                     open_timeout=30) as ws:
            ws.send(json.dumps({"type": "session.update", "session": {
                "type": "transcription", "audio": {"input": {"turn_detection": None}}}}))
            for _ in range(40):
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            time.sleep(5)

    deep = "[" * 50000 + "]" * 50000

    def malformed():
        with connect(f"ws://127.0.0.1:{srv.live_port}/", additional_headers=AUTH, open_timeout=30) as ws:
            ws.send(deep)
            ws.recv(timeout=10)
        with connect(f"ws://127.0.0.1:{srv.port}/v1/realtime", additional_headers=AUTH, open_timeout=30) as ws:
            ws.send(deep)
            ws.recv(timeout=10)
        for raw in (b'{"type": "audio-chunk", "payload_length": 10000000000}\n', b"[" * 50000 + b"\n"):
            with socket.create_connection(("127.0.0.1", srv.stt_port), timeout=10) as s:
                s.sendall(raw)
                s.recv(65536)

    def vanish():
        ws = connect(f"ws://127.0.0.1:{srv.live_port}/", additional_headers=AUTH, open_timeout=30)
        ws.send(json.dumps({"uid": "gone", "language": "en"}))
        ws.recv(timeout=30)
        ws.send(jfk16[:32000].astype("<f4").tobytes())
        ws.socket.shutdown(socket.SHUT_RDWR)
        ws.socket.close()
        time.sleep(1)

    return [loop(n, f) for n, f in (("keyless", keyless), ("long_upload", long_upload), ("idle_wyoming", idle_wyoming),
                                    ("flood", flood), ("commit_loop", commit_loop), ("malformed", malformed),
                                    ("vanish", vanish))]


# ---- the run -----------------------------------------------------------------------------

def phase(srv: Server, jfk: bytes, jfk16: np.ndarray, audio24: np.ndarray, seconds: float, with_hostile: bool,
          peak: Peak) -> dict:
    log = Log()
    until = time.monotonic() + seconds
    live16 = np.concatenate([jfk16, np.zeros(16000, np.float32)])
    rt24 = np.concatenate([audio24, np.zeros(36000, np.int16)])
    clients = [threading.Thread(target=f, args=a, daemon=True) for f, a in (
        (rest_stt, (srv, jfk, log, until)), (rest_tts, (srv, log, until)), (whisperlive, (srv, live16, log, until)),
        (realtime, (srv, rt24, log, until)), (wyoming, (srv, jfk16, log, until)))]
    counts: dict = {}
    attackers = hostile(srv, jfk16, audio24, until, counts) if with_hostile else []
    peak.take()
    for t in clients + attackers:
        t.start()
    for t in clients:
        t.join(seconds + 180)
    for t in attackers:
        t.join(60)
    rows = {}
    for client, entries in sorted(log.rows.items()):
        latencies = sorted(x for ok, x in entries if ok and x is not None)
        rows[client] = {"requests": len(entries), "succeeded": sum(ok for ok, _ in entries),
                        "p50_s": statistics.median(latencies) if latencies else None,
                        "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None}
    return {"clients": rows, "peak_rss": peak.take(), "hostile": counts, "failures": dict(log.why)}


def markdown(report: dict) -> str:
    quiet, loud = report["phases"]["quiet"], report["phases"]["hostile"]
    lines = ["| legitimate client | requests (quiet / hostile) | succeeded | p50 quiet / hostile | p95 quiet / hostile "
             "| p95 ratio |", "|---|---|---|---|---|---|"]
    for client in sorted(set(quiet["clients"]) | set(loud["clients"])):
        q, h = quiet["clients"].get(client, {}), loud["clients"].get(client, {})

        def s(v):
            return f"{v:.2f} s" if v is not None else "-"

        ratio = f"{h['p95_s'] / q['p95_s']:.2f}x" if q.get("p95_s") and h.get("p95_s") else "-"
        done = f"{q.get('succeeded', 0)}/{q.get('requests', 0)} / {h.get('succeeded', 0)}/{h.get('requests', 0)}"
        lines.append(f"| {client} | {q.get('requests', 0)} / {h.get('requests', 0)} | {done} | "
                     f"{s(q.get('p50_s'))} / {s(h.get('p50_s'))} | {s(q.get('p95_s'))} / {s(h.get('p95_s'))} | "
                     f"{ratio} |")
    mib = 2**20
    lines += ["", f"Server peak RSS: quiet {quiet['peak_rss'] / mib:.0f} MiB, hostile {loud['peak_rss'] / mib:.0f} MiB;"
              " "
              f"budget {report['budget']} + margin {report['margin_mib']} MiB = "
              f"{report['budget_bytes'] / mib + report['margin_mib']:.0f} MiB. Tracebacks in the log: "
              f"{report['tracebacks']}."]
    return "\n".join(lines)


def _starts(text: str, needle: str) -> list[int]:
    """Where each ``needle`` begins, from a few lines before (the log line that led to it)."""
    out, at = [], text.find(needle)
    while at >= 0:
        out.append(max(0, text.rfind("\n", 0, max(0, at - 400))))
        at = text.find(needle, at + 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase-s", type=float, default=90.0, help="seconds of each phase (quiet, hostile)")
    parser.add_argument("--jfk", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/jfk.flac"))
    parser.add_argument("--out", help="write the report (JSON) here")
    args = parser.parse_args()

    from leanspeech.audio import decode_audio, resample
    from leanspeech.measure.machine import command, describe
    from leanspeech.memory import parse_bytes

    jfk = Path(args.jfk).read_bytes()
    jfk16 = decode_audio(jfk)
    audio24 = (np.clip(resample(jfk16, 16000, 24000), -1, 1) * 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "server.log")
        peak = Peak(srv.proc.pid)
        try:
            phases = {"quiet": phase(srv, jfk, jfk16, audio24, args.phase_s, False, peak),
                      "hostile": phase(srv, jfk, jfk16, audio24, args.phase_s, True, peak)}
            text = srv.text()
        finally:
            peak.stop.set()
            srv.stop()
    report = {"command": command(), "machine": describe(), "phase_s": args.phase_s, "budget": BUDGET,
              "budget_bytes": parse_bytes(BUDGET), "margin_mib": MARGIN_MIB, "model": "tiny.en", "precision": "int8",
              "audio": "jfk.flac (11 s), JFK again and again with 1 s of silence for the live clients; a 2-sentence "
                       "text for speech",
              "phases": phases, "tracebacks": text.count("Traceback"),
              "traceback_excerpts": [text[i:i + 3000] for i in _starts(text, "Traceback")[:3]]}
    report["markdown"] = markdown(report)
    print(report["markdown"])
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
