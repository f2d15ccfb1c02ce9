"""Live sessions bounded: floods, commit loops, idle Wyoming connections that hold slots,
deep JSON, and clients that vanish mid-session."""

import asyncio
import base64
import json
import socket
import time

import numpy as np
import pytest
from websockets.sync.client import connect

from helpers import PeakRSS, heard_jfk, live_session, no_tracebacks, pcm, wyoming_transcribe

pytestmark = [pytest.mark.hostile, pytest.mark.model, pytest.mark.live, pytest.mark.timeout(300)]

#: Most the server's RSS may grow under a flood or a commit loop (a session's buffer is
#: at most LIVE__MAX_BUFFER_S of audio: 60 s are 3.8 MiB of float32), with margin.
FLOOD_RSS_BOUND_MIB = 120


@pytest.fixture(scope="module")
def server(make_server):
    # no eviction of idle sessions here: the idle timeout alone must free the slots
    return make_server({"wyoming": True, "LEANSPEECH_WYOMING__IDLE_TIMEOUT": "3", "LEANSPEECH_LIVE__EVICT_IDLE_S": "0"})


def test_a_whisperlive_flood_gets_an_error_and_a_close_not_unbounded_memory(server, jfk_audio):
    """Ten minutes of speech sent at 100x real time (each 1 s frame 10 ms after the last)."""
    audio = np.tile(jfk_audio, 55)  # about 10 minutes
    with PeakRSS(server.proc.pid) as rss:
        run = live_session(server.ws_url, audio, frame_s=1.0, speed=100)
    assert run.close_code == 1008, (run.close_code, run.messages[-3:])
    error = run.of("status")[-1]
    assert error["status"] == "ERROR" and "faster than it can be transcribed" in error["message"]
    assert "MAX_BUFFER_S" in error["message"]
    assert rss.grew_mib < FLOOD_RSS_BOUND_MIB, f"RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB"


def test_a_whisperlive_stream_at_20x_real_time_stays_bounded(server, jfk_audio):
    """Four minutes at 20x: served whole if the decoder keeps up, else the same clean error."""
    audio = np.tile(jfk_audio, 22)
    with PeakRSS(server.proc.pid) as rss:
        run = live_session(server.ws_url, audio, frame_s=0.5, speed=20)
    assert run.error is None
    if run.close_code == 1000:
        assert heard_jfk(run.completed_text()[:200], max_wer=0.5) or JFK_WORDS in run.completed_text().lower()
    else:
        assert run.close_code == 1008 and run.of("status")[-1]["status"] == "ERROR"
    assert rss.grew_mib < FLOOD_RSS_BOUND_MIB, f"RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB"


JFK_WORDS = "ask not what your country"


def _realtime(server):
    return connect(server.realtime_url + "?intent=transcription", open_timeout=30, max_size=None)


def _events(ws, until: float, done=None) -> list[dict]:
    """Events until ``done(events)``, a pause of 5 s, the close or ``until``."""
    out = []
    while time.monotonic() < until and not (done and done(out)):
        try:
            out.append(json.loads(ws.recv(timeout=max(0.01, min(5.0, until - time.monotonic())))))
        except TimeoutError:
            break
    return out


def _answered(events) -> int:
    return sum(1 for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
               or (e["type"] == "error" and e["error"]["code"] == "too_many_items_in_flight"))


def test_a_realtime_commit_loop_is_capped_with_clean_errors(server, jfk_audio):
    second = base64.b64encode(pcm(_to_24k(jfk_audio[:16000 * 2]), "int16")).decode()
    with PeakRSS(server.proc.pid) as rss, _realtime(server) as ws:
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "transcription", "audio": {"input": {"turn_detection": None}}}}))
        for _ in range(40):
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": second}))
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = _events(ws, time.monotonic() + 120, lambda seen: _answered(seen) >= 40)
    kinds = [e["type"] for e in events]
    capped = [e for e in events if e["type"] == "error" and e["error"]["code"] == "too_many_items_in_flight"]
    assert capped, kinds
    assert "MAX_ITEMS_IN_FLIGHT" in capped[0]["error"]["message"]
    done = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert done and len(done) + len(capped) == 40, kinds  # every commit answered, none lost
    assert rss.grew_mib < FLOOD_RSS_BOUND_MIB, f"RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB"


def test_realtime_audio_without_a_commit_is_bounded(server):
    """Appends of 40 s of audio each and never a commit: past the buffer bound, an error
    event and a close."""
    chunk = base64.b64encode(np.zeros(24000 * 40, "<i2").tobytes()).decode()
    noise = np.random.default_rng(0).normal(0, 0.1, 24000 * 40)
    speech_like = base64.b64encode(pcm(noise, "int16")).decode()
    with PeakRSS(server.proc.pid) as rss, _realtime(server) as ws:
        ws.send(json.dumps({"type": "session.update", "session": {
            "type": "transcription", "audio": {"input": {"turn_detection": None}}}}))
        closed = None
        try:
            for i in range(30):
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": speech_like if i % 2 else chunk}))
            events = _events(ws, time.monotonic() + 30)
        except Exception as exc:  # noqa: BLE001 - the server closed while we sent
            closed = exc
            events = []
        close_code = ws.close_code
    errors = [e for e in events if e["type"] == "error"]
    assert closed is not None or any(e["error"]["code"] == "buffer_full" for e in errors), events[-3:]
    assert close_code == 1008
    assert rss.grew_mib < FLOOD_RSS_BOUND_MIB, f"RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB"


def _to_24k(audio16k: np.ndarray) -> np.ndarray:
    from leanspeech.audio import resample

    return resample(audio16k, 16000, 24000)


async def _idle_wyoming(port: int, count: int = 6) -> list:
    """``count`` connections that send transcribe and audio-start, then nothing."""
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioStart
    from wyoming.client import AsyncTcpClient

    idle = []
    for _ in range(count):
        c = AsyncTcpClient("127.0.0.1", port)
        await c.connect()
        await c.write_event(Transcribe(language="en").event())
        await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        idle.append(c)
    return idle


async def _told(connection) -> list:
    """Every event a connection gets until the server closes it."""
    events = []
    while (event := await asyncio.wait_for(connection.read_event(), 10)) is not None:
        events.append(event)
    return events


def test_idle_wyoming_connections_release_their_slots(server, jfk_audio):
    """Six connections send transcribe and audio-start, then nothing: every live slot is
    held until the idle timeout (3 s here) closes them; then a real client is served."""

    async def attack():
        idle = await _idle_wyoming(server.wyoming_stt_port)
        await asyncio.sleep(0.5)
        locked_out = await wyoming_transcribe(server.wyoming_stt_port, jfk_audio)
        told = [e for c in idle for e in await _told(c)]  # each is told why, then closed
        await asyncio.sleep(0.5)
        served = await wyoming_transcribe(server.wyoming_stt_port, jfk_audio)
        return locked_out, told, served

    locked_out, told, served = asyncio.run(attack())
    assert locked_out[-1].type == "error" and locked_out[-1].data["code"] == "busy"
    assert sum(1 for e in told if e.type == "error" and e.data["code"] == "idle_timeout") == 6, told
    transcript = next(e for e in served if e.type == "transcript")
    assert heard_jfk(transcript.data["text"]), transcript.data


def test_idle_sessions_give_their_slots_to_a_client_that_streams(make_server, jfk_audio):
    """With eviction (the default, 1 s here), idle connections hold slots only while nobody
    else needs them: a real Wyoming client and a WhisperLive client are served at once."""
    server = make_server({"wyoming": True, "LEANSPEECH_LIVE__EVICT_IDLE_S": "1"})

    async def attack():
        idle = await _idle_wyoming(server.wyoming_stt_port)
        await asyncio.sleep(1.5)
        served = await wyoming_transcribe(server.wyoming_stt_port, jfk_audio)
        live = await asyncio.to_thread(live_session, server.ws_url, jfk_audio, speed=8)
        told = await _told(idle[0])  # the idlest: its slot went to the Wyoming client
        return served, live, told

    served, live, told = asyncio.run(attack())
    transcript = next(e for e in served if e.type == "transcript")
    assert heard_jfk(transcript.data["text"]), transcript.data
    assert live.close_code == 1000 and heard_jfk(live.completed_text()), live.messages[-2:]
    assert told[-1].type == "error" and told[-1].data["code"] == "session_evicted", told
    assert "EVICT_IDLE_S" in told[-1].data["text"]
    no_tracebacks(server)


def test_wyoming_oversized_and_malformed_events_get_an_error_and_a_close(server):
    def exchange(raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.wyoming_stt_port), timeout=10) as s:
            s.sendall(raw)
            data = b""
            while True:
                part = s.recv(65536)
                if not part:
                    return data
                data += part

    huge = exchange(json.dumps({"type": "audio-chunk", "payload_length": 10**10}).encode() + b"\n")
    assert b'"error"' in huge and b"payload_too_large" in huge
    deep = exchange(b'{"type": "transcribe", "data": ' + b"[" * 100000 + b"\n")
    assert b"invalid_event" in deep
    long_line = exchange(b"x" * 200000 + b"\n")
    assert b"invalid_event" in long_line


def test_deep_json_gets_the_protocols_error(server):
    deep = "[" * 100000 + "]" * 100000
    run = live_session(server.ws_url, first_frame=deep)
    assert run.of("status")[-1]["status"] == "ERROR" and "nested too deeply" in run.of("status")[-1]["message"]
    with _realtime(server) as ws:
        ws.send(deep)
        events = _events(ws, time.monotonic() + 10, lambda seen: seen and seen[-1]["type"] == "error")
        assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "invalid_json"
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))  # the session goes on
        assert _events(ws, time.monotonic() + 10, bool)[-1]["type"] == "input_audio_buffer.cleared"


def test_clients_that_vanish_mid_session_leave_no_traceback(server, jfk_audio):
    for url in (server.ws_url, f"ws://127.0.0.1:{server.live_port}/", server.realtime_url):
        ws = connect(url, open_timeout=30)
        if "realtime" in url:
            ws.send(json.dumps({"type": "input_audio_buffer.append",
                                "audio": base64.b64encode(pcm(_to_24k(jfk_audio[:32000]), "int16")).decode()}))
        else:
            ws.send(json.dumps({"uid": "gone", "language": "en", "model": "tiny.en"}))
            ws.recv(timeout=30)
            ws.send(pcm(jfk_audio[:48000], "float32"))
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
        ws.socket.close()
    time.sleep(3)
    assert live_session(server.ws_url, jfk_audio[:16000 * 3], speed=8).close_code == 1000  # still serving
    no_tracebacks(server)


def test_a_websocket_message_over_the_limit_closes_with_1009(server):
    """One 5 MiB audio frame: over LIVE__MAX_MESSAGE_BYTES (4 MiB), never held."""
    from websockets.exceptions import ConnectionClosed

    with PeakRSS(server.proc.pid) as rss, connect(server.ws_url, open_timeout=30, max_size=None) as ws:
        ws.send(json.dumps({"uid": "big", "language": "en", "model": "tiny.en"}))
        assert json.loads(ws.recv(timeout=30))["message"] == "SERVER_READY"
        with pytest.raises(ConnectionClosed):
            ws.send(b"\0" * (5 * 2**20))
            ws.recv(timeout=30)
        assert ws.close_code == 1009
    assert rss.grew_mib < FLOOD_RSS_BOUND_MIB
