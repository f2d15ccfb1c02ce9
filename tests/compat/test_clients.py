"""Real clients on loopback, on one server: the ``openai`` SDK (REST and Realtime), the
``wyoming`` package's client, WhisperLive's own client. Assertions hold on any CPU: a WER
bound or a key phrase, never an exact word."""

import asyncio
import base64
import sys
import threading
import time
import types

import httpx
import numpy as np
import pytest

from helpers import JFK_PHRASE, normalized, wer, wyoming_transcribe
from leanspeech.server.pcm import float_to_int16 as pcm16

pytestmark = [pytest.mark.model, pytest.mark.live]

JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
MAX_WER = 0.35


def resample(samples: np.ndarray, rate: int, from_rate: int = 16000) -> np.ndarray:
    import soxr

    return soxr.resample(samples, from_rate, rate).astype(np.float32)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 240))


# ---- the openai SDK: REST ----------------------------------------------------------------

def test_openai_sdk_rest_every_format_and_the_aliases(server, jfk):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    for model in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"):
        with open(jfk, "rb") as f:
            text = client.audio.transcriptions.create(model=model, file=f).text
        assert wer(JFK_TEXT, text) < MAX_WER, (model, text)
    for fmt, check in (("text", lambda r: JFK_PHRASE in normalized(r)), ("srt", lambda r: "-->" in r),
                       ("vtt", lambda r: r.startswith("WEBVTT")),
                       ("verbose_json", lambda r: r.language == "en" and r.segments)):
        with open(jfk, "rb") as f:
            result = client.audio.transcriptions.create(model="whisper-1", file=f, response_format=fmt)
        assert check(result), (fmt, result)
    with open(jfk, "rb") as f:
        events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f, stream=True))
    assert events[-1].type == "transcript.text.done" and wer(JFK_TEXT, events[-1].text) < MAX_WER
    for model in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"):
        audio = client.audio.speech.create(model=model, voice="alloy", input="Testing.", response_format="wav")
        assert audio.content[:4] == b"RIFF", model
    voices = httpx.get(server.url + "/v1/audio/voices").json()["voices"]
    assert {"id": "en_US-joe-medium", "name": "en_US-joe-medium"} in voices
    assert any(v["id"] == "alloy" for v in voices)


# ---- the openai SDK: Realtime ------------------------------------------------------------

#: Seconds without an event, once every turn has completed, before the stream is taken as
#: done: a turn can complete before the server's VAD has heard the next one start.
QUIET_S = 2.0


async def realtime_transcribe(server, audio16k: np.ndarray, *, speed: float = 4.0, update: dict | None = None):
    """Stream ``audio16k`` as 24 kHz pcm16 through ``client.realtime.connect`` (``speed``x
    real time), then a second of silence; the events and the completed transcripts in order."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    pcm = pcm16(resample(np.concatenate([audio16k, np.zeros(16000, np.float32)]), 24000))
    events: list = []
    async with client.realtime.connect(model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as conn:
        events.append(await conn.recv())
        session = {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 700}}}}
        session["audio"]["input"].update(update or {})
        await conn.session.update(session=session)
        step = 9600  # 0.2 s
        for i in range(0, len(pcm), step):
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i:i + step]).decode())
            await asyncio.sleep(0.2 / speed)
        committed, completed = set(), {}
        deadline = time.monotonic() + 120
        settled = False  # every turn so far completed: a later turn's events may still come
        while time.monotonic() < deadline:
            try:
                event = await asyncio.wait_for(conn.recv(), QUIET_S if settled else 60)
            except asyncio.TimeoutError:
                if settled:
                    break
                raise
            events.append(event)
            if event.type == "input_audio_buffer.committed":
                committed.add(event.item_id)
            elif event.type == "conversation.item.input_audio_transcription.completed":
                completed[event.item_id] = event
            elif event.type == "error":
                raise AssertionError(event.error)
            settled = bool(committed) and set(completed) == committed and not _speaking(events)
    order = [e.item_id for e in events if e.type == "input_audio_buffer.committed"]
    return events, [completed[i] for i in order]


def _speaking(events) -> bool:
    started = sum(e.type == "input_audio_buffer.speech_started" for e in events)
    return started > sum(e.type == "input_audio_buffer.speech_stopped" for e in events)


def test_realtime_sdk_transcription_session_transcribes_jfk(server, jfk_audio):
    events, completed = run(realtime_transcribe(server, jfk_audio))
    types_seen = [e.type for e in events]
    assert types_seen[:2] == ["session.created", "session.updated"]
    assert events[1].session.audio.input.turn_detection.silence_duration_ms == 700
    for kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                 "input_audio_buffer.committed", "conversation.item.input_audio_transcription.delta"):
        assert kind in types_seen, kind
    text = " ".join(c.transcript for c in completed)
    assert wer(JFK_TEXT, text) < MAX_WER, text
    assert all(c.content_index == 0 and c.usage.type == "duration" for c in completed)
    # the turns' audio (speech, prefix padding, the silence that ended each) is most of the clip
    assert 8.0 <= sum(c.usage.seconds for c in completed) <= 12.5
    first = next(e for e in events if e.type == "input_audio_buffer.speech_started")
    assert 0 <= first.audio_start_ms <= 1500  # JFK speaks from about 0.3 s


def test_realtime_g711_with_manual_commit(server, jfk_audio):
    """Telephone audio: µ-law at 8 kHz, no server VAD, the client commits."""
    import warnings

    from openai import AsyncOpenAI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
        ulaw = audioop.lin2ulaw(pcm16(resample(jfk_audio, 8000)), 2)

    async def go():
        client = AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
        async with client.realtime.connect(model="whisper-1", extra_query={"intent": "transcription"}) as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcmu"}, "turn_detection": None}}})
            assert (await conn.recv()).session.audio.input.format.type == "audio/pcmu"
            for i in range(0, len(ulaw), 1600):
                await conn.input_audio_buffer.append(audio=base64.b64encode(ulaw[i:i + 1600]).decode())
            await conn.input_audio_buffer.commit()
            async for event in conn:
                assert event.type not in ("error", "conversation.item.input_audio_transcription.failed"), event
                if event.type == "conversation.item.input_audio_transcription.completed":
                    return event

    completed = run(go())
    assert "country" in normalized(completed.transcript) and completed.usage.seconds == pytest.approx(11.0, abs=0.1)


def test_realtime_bad_input_over_a_real_socket_harms_no_one(server, jfk_audio):
    """Raw frames from the ``websockets`` client: errors come back as events and the session
    then transcribes; an append over the configured limit (1 MiB here) is refused."""
    import json

    import websockets

    async def go():
        async with websockets.connect(server.realtime_url + "?intent=transcription", max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            replies = []
            for frame in ("{oops", json.dumps({"type": "conversation.item.create"}),
                          json.dumps({"type": "input_audio_buffer.append", "audio": "!!"}),
                          json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(bytes(2 * 2**20)).decode()})):
                await ws.send(frame)
                replies.append(json.loads(await ws.recv()))
            assert [r["error"]["code"] for r in replies] == ["invalid_json", "unsupported_event", "invalid_value",
                                                             "audio_too_large"]
            pcm = pcm16(resample(jfk_audio, 24000))
            manual = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await ws.send(json.dumps({"type": "session.update", "session": manual}))
            await ws.recv()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "conversation.item.input_audio_transcription.completed":
                    return event["transcript"]

    assert JFK_PHRASE in normalized(run(go()))


# ---- Wyoming -----------------------------------------------------------------------------


def test_wyoming_describe_and_transcribe_any_format(server, jfk_audio):
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    async def describe(port):
        async with AsyncTcpClient("127.0.0.1", port) as c:
            await c.write_event(Describe().event())
            return Info.from_event(await c.read_event())

    asr = run(describe(server.wyoming_stt_port)).asr[0]
    assert asr.supports_transcript_streaming and "tiny.en" in [m.name for m in asr.models]
    assert next(m for m in asr.models if m.name == "tiny.en").languages == ["en"]
    tts = run(describe(server.wyoming_tts_port)).tts[0]
    assert tts.supports_synthesize_streaming and tts.voices[0].name == "en_US-joe-medium"

    for rate, width, channels in ((16000, 2, 1), (44100, 2, 2), (8000, 4, 1)):
        events = run(wyoming_transcribe(server.wyoming_stt_port, jfk_audio, rate, width, channels))
        kinds = [e.type for e in events]
        assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"], kinds
        text = events[-2].data["text"]
        assert wer(JFK_TEXT, text) < MAX_WER, (rate, width, channels, text)
        chunks = "".join(e.data["text"] for e in events if e.type == "transcript-chunk")
        assert chunks and normalized(text).startswith(normalized(chunks)[:10])


def test_wyoming_synthesize_streams_by_sentence_and_transcribes_back(server):
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

    sentence = "The quick brown fox jumps over the lazy dog."

    async def synthesize():
        async with AsyncTcpClient("127.0.0.1", server.wyoming_tts_port) as c:
            await c.write_event(Synthesize(text=sentence).event())
            pcm, rate = b"", None
            while (event := await c.read_event()).type != "audio-stop":
                if event.type == "audio-start":
                    rate = event.data["rate"]
                elif event.type == "audio-chunk":
                    pcm += event.payload
            return pcm, rate

    async def stream():
        async with AsyncTcpClient("127.0.0.1", server.wyoming_tts_port) as c:
            await c.write_event(SynthesizeStart().event())
            await c.write_event(SynthesizeChunk(text="Hello there. Second ").event())
            first = await asyncio.wait_for(c.read_event(), 60)  # audio of the first sentence, before the rest
            got_audio_early = first.type == "audio-start"
            await c.write_event(SynthesizeChunk(text="sentence here.").event())
            await c.write_event(SynthesizeStop().event())
            await c.write_event(Synthesize(text="Hello there. Second sentence here.").event())  # ignored
            kinds = [first.type]
            while (event := await c.read_event()).type != "synthesize-stopped":
                kinds.append(event.type)
            return got_audio_early, kinds

    pcm, rate = run(synthesize())
    audio = (np.frombuffer(pcm, "<i2") / 32768.0).astype(np.float32)
    assert rate == 22050 and audio.shape[0] > rate
    events = run(wyoming_transcribe(server.wyoming_stt_port, resample(audio, 16000, from_rate=rate)))
    assert wer(sentence, events[-2].data["text"]) < MAX_WER, events[-2].data
    early, kinds = run(stream())
    assert early and kinds.count("audio-start") == 1 and kinds[-1] == "audio-stop" and "audio-chunk" in kinds


def test_wyoming_bad_input(server):
    from wyoming.audio import AudioChunk
    from wyoming.client import AsyncTcpClient
    from wyoming.event import Event
    from wyoming.info import Describe

    async def go():
        async with AsyncTcpClient("127.0.0.1", server.wyoming_stt_port) as c:
            await c.write_event(Event(type="no-such-event", data={"x": 1}))  # ignored, as the protocol says
            await c.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=bytes(320)).event())
            error = await c.read_event()
            await c.write_event(Describe().event())
            return error, await c.read_event()

    error, info = run(go())
    assert error.type == "error" and error.data["code"] == "audio_not_started" and "audio-start" in error.data["text"]
    assert info.type == "info"


# ---- WhisperLive's own client --------------------------------------------------------------

def test_whisperlive_client_streams_jfk(server, jfk_audio, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyaudio", types.ModuleType("pyaudio"))  # imported, never used here
    from whisper_live.client import StreamingTranscriptionClient

    client = StreamingTranscriptionClient("127.0.0.1", server.live_port, lang="en", model="tiny.en",
                                          use_vad=True)
    with client:
        data = pcm16(jfk_audio)
        for i in range(0, len(data), 6400):
            client.send(data[i:i + 6400], pcm_format="int16")
            time.sleep(0.05)
    text = " ".join(seg["text"] for seg in client.transcript)
    assert wer(JFK_TEXT, text) < MAX_WER, text


# ---- one model, one budget -----------------------------------------------------------------

def test_four_protocols_at_once_share_one_model_and_batch(server, jfk, jfk_audio, monkeypatch):
    from openai import OpenAI

    monkeypatch.setitem(sys.modules, "pyaudio", types.ModuleType("pyaudio"))
    from whisper_live.client import StreamingTranscriptionClient

    def batches():
        metrics = httpx.get(server.url + "/metrics").text
        count = float(next(line.split()[-1] for line in metrics.splitlines()
                           if line.startswith("leanspeech_batch_size_count")))
        ones = float(next(line.split()[-1] for line in metrics.splitlines()
                          if line.startswith('leanspeech_batch_size_bucket{le="1.0"}')))
        return count, ones

    before = batches()
    results: dict = {}

    def whisperlive():
        client = StreamingTranscriptionClient("127.0.0.1", server.live_port, lang="en", model="tiny.en")
        with client:
            data = pcm16(jfk_audio)
            for i in range(0, len(data), 6400):
                client.send(data[i:i + 6400], pcm_format="int16")
                time.sleep(0.05)
        results["whisperlive"] = " ".join(s["text"] for s in client.transcript)

    def rest():
        client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        for _ in range(3):
            with open(jfk, "rb") as f:
                results.setdefault("openai", []).append(client.audio.transcriptions.create(model="whisper-1",
                                                                                            file=f).text)

    async def streams():
        realtime = realtime_transcribe(server, jfk_audio)
        wyoming = wyoming_transcribe(server.wyoming_stt_port, jfk_audio)
        (_, completed), events = await asyncio.gather(realtime, wyoming)
        results["realtime"] = " ".join(c.transcript for c in completed)
        results["wyoming"] = events[-2].data["text"]

    threads = [threading.Thread(target=whisperlive), threading.Thread(target=rest)]
    for t in threads:
        t.start()
    run(streams())
    for t in threads:
        t.join(240)
    assert set(results) == {"whisperlive", "openai", "realtime", "wyoming"}
    for name, text in results.items():
        for one in text if isinstance(text, list) else [text]:
            assert wer(JFK_TEXT, one) < MAX_WER, (name, one)
    loaded = [m for m in httpx.get(server.url + "/memory").json()["models"] if m["kind"] == "stt"]
    assert [m["name"] for m in loaded] == ["tiny.en"]  # one model for all four
    count, ones = batches()
    assert count - before[0] > (ones - before[1]), "no decode batched windows of different clients"
    protocols = httpx.get(server.url + "/info").json()["protocols"]
    assert all(protocols[p]["sessions_total"] >= 1 for p in ("whisperlive", "realtime", "wyoming"))
    assert protocols["openai"]["requests_total"] >= 3 and protocols["realtime"]["requests_total"] >= 1
    metrics = httpx.get(server.url + "/metrics").text
    assert 'leanspeech_protocol_requests_total{protocol="wyoming"}' in metrics


# ---- clients that vanish -------------------------------------------------------------------

def test_clients_that_vanish_mid_stream_leave_nothing_behind(server, jfk_audio):
    import json

    import websockets
    from wyoming.audio import AudioChunk, AudioStart
    from wyoming.client import AsyncTcpClient

    async def go():
        ws = await websockets.connect(server.realtime_url + "?intent=transcription")
        await ws.recv()
        pcm = pcm16(resample(jfk_audio[:16000 * 4], 24000))
        for i in range(0, len(pcm), 9600):  # mid-turn: speech started, never stopped
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(pcm[i:i + 9600]).decode()}))
        ws.transport.abort()  # no close frame: the TCP connection just ends
        c = AsyncTcpClient("127.0.0.1", server.wyoming_stt_port)
        await c.connect()
        await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await c.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm16(jfk_audio[:48000])).event())
        await asyncio.sleep(1.0)
        c._writer.transport.abort()

    run(go())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        protocols = httpx.get(server.url + "/info").json()["protocols"]
        refs = [m["refs"] for m in httpx.get(server.url + "/memory").json()["models"]]
        if all(p["open_sessions"] == 0 for p in protocols.values()) and all(r == 0 for r in refs):
            break
        time.sleep(0.5)
    assert all(p["open_sessions"] == 0 for p in protocols.values()), protocols
    assert all(r == 0 for r in refs), refs
    assert httpx.get(server.url + "/health").status_code == 200
