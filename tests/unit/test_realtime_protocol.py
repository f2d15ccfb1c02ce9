"""The Realtime API adapter in-process (Starlette's WebSocket test client, fake engines):
every bad event gets an ``error`` event with its code and the session goes on."""

import base64
import contextlib

import numpy as np
import pytest
from fakes import Fakes, tone
from starlette.testclient import TestClient

from leanspeech.config import Settings
from leanspeech.runtime import Runtime
from leanspeech.server.app import create_app

#: starlette's TestClient connects WebSockets to ws://testserver: the Host guard must know the name
TESTSERVER = {"server": {"allowed_hosts": ["testserver"]}}

URL = "/v1/realtime?intent=transcription"


@contextlib.contextmanager
def session(max_append="64KB", **live):
    settings = Settings.model_validate({"stt": {"vad": False}, "live": {"port": -1, **live}, **TESTSERVER,
                                        "wyoming": {"stt_port": -1, "tts_port": -1},
                                        "realtime": {"max_append_bytes": max_append}})
    app = create_app(runtime=Runtime(settings, loaders=Fakes(settings).loaders()), preload=False)
    with TestClient(app, base_url="http://127.0.0.1") as client, client.websocket_connect(URL) as ws:
        created = ws.receive_json()
        assert created["type"] == "session.created" and created["session"]["type"] == "transcription"
        ws.runtime, ws.client = app.state.runtime, client
        yield ws


def pcm24(seconds: float) -> str:
    samples = np.repeat(tone(seconds), 3)[::2]  # 16 kHz -> 24 kHz, roughly: only the length matters here
    return base64.b64encode((samples * 32767).astype("<i2").tobytes()).decode()


def expect_error(ws, event: dict | str, code: str, *needles: str) -> dict:
    ws.send_text(event if isinstance(event, str) else __import__("json").dumps(event))
    reply = ws.receive_json()
    assert reply["type"] == "error", reply
    err = reply["error"]
    assert err["code"] == code and set(err) >= {"type", "code", "message", "param", "event_id"}, err
    for needle in needles:
        assert needle in err["message"], err
    return err


def test_bad_events_get_error_events_and_the_session_goes_on():
    with session() as ws:
        expect_error(ws, "{not json", "invalid_json")
        expect_error(ws, "[1, 2]", "invalid_event")
        expect_error(ws, {"type": "no.such.event"}, "invalid_event", "no.such.event")
        err = expect_error(ws, {"type": "response.create", "event_id": "e1"}, "unsupported_event", "conversation")
        assert err["event_id"] == "e1"  # the client's event id comes back
        expect_error(ws, {"type": "session.update", "session": {"type": "realtime"}}, "unsupported_session_type",
                     "conversation")
        expect_error(ws, {"type": "input_audio_buffer.append", "audio": "%%%not base64"}, "invalid_value", "base64")
        expect_error(ws, {"type": "input_audio_buffer.append"}, "invalid_value", "base64")
        expect_error(ws, {"type": "input_audio_buffer.append", "audio": pcm24(3.0)}, "audio_too_large", "64")
        expect_error(ws, {"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty")
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["error"]["code"] == "invalid_event"
        # the session still works
        ws.send_json({"type": "session.update", "session": {"type": "transcription",
                                                              "audio": {"input": {"turn_detection": None}}}})
        updated = ws.receive_json()
        assert updated["type"] == "session.updated" and updated["session"]["audio"]["input"]["turn_detection"] is None


@pytest.mark.parametrize("update,code,param", [
    ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "invalid_value",
     "session.audio.input.format.rate"),
    ({"audio": {"input": {"format": "mp3"}}}, "invalid_value", "session.audio.input.format"),
    ({"audio": {"input": {"transcription": {"model": "no-such-model"}}}}, "model_not_found",
     "session.audio.input.transcription.model"),
    ({"audio": {"input": {"transcription": {"language": "xx"}}}}, "invalid_option",
     "session.audio.input.transcription.language"),
    ({"audio": {"input": {"transcription": {"language": "de"}}}}, "invalid_option",
     "session.audio.input.transcription.language"),  # English-only model
    ({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, "invalid_value",
     "session.audio.input.turn_detection.type"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}}}, "invalid_value",
     "session.audio.input.turn_detection.threshold"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": "long"}}}},
     "invalid_type", "session.audio.input.turn_detection.silence_duration_ms"),
    ({"audio": "loud"}, "invalid_type", "session.audio"),
])
def test_a_bad_session_update_changes_nothing(update, code, param):
    with session() as ws:
        err = expect_error(ws, {"type": "session.update", "session": {"type": "transcription", **update}}, code)
        assert err["param"] == param, err
        ws.send_json({"type": "session.update", "session": {"type": "transcription"}})
        cfg = ws.receive_json()["session"]["audio"]["input"]
        assert cfg["format"] == {"type": "audio/pcm", "rate": 24000} and cfg["turn_detection"]["type"] == "server_vad"
        assert cfg["transcription"]["language"] is None


def test_audio_before_session_update_uses_the_defaults_and_a_manual_commit_completes():
    with session() as ws:
        ws.send_json({"type": "transcription_session.update",  # the beta event and its flat fields
                      "session": {"input_audio_format": "g711_ulaw", "turn_detection": None}})
        cfg = ws.receive_json()["session"]["audio"]["input"]
        assert cfg["format"] == {"type": "audio/pcmu"} and cfg["turn_detection"] is None
        ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(8000)).decode()})
        ws.send_json({"type": "input_audio_buffer.commit"})
        committed = ws.receive_json()
        assert committed["type"] == "input_audio_buffer.committed" and committed["previous_item_id"] is None
        while (event := ws.receive_json())["type"] == "conversation.item.input_audio_transcription.delta":
            pass
        assert event["type"] == "conversation.item.input_audio_transcription.completed", event
        assert event["item_id"] == committed["item_id"] and event["usage"] == {"type": "duration", "seconds": 1.0}
        ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(800)).decode()})
        ws.send_json({"type": "input_audio_buffer.clear"})
        assert ws.receive_json()["type"] == "input_audio_buffer.cleared"
        expect_error(ws, {"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty")


def test_sessions_past_max_clients_are_refused_with_an_error_event():
    from starlette.websockets import WebSocketDisconnect

    with session(max_clients=1, evict_idle_s=0) as ws:  # no eviction: the first session is idle
        assert ws.runtime.protocols()["realtime"]["open_sessions"] == 1
        with ws.client.websocket_connect(URL) as second:
            refused = second.receive_json()
            assert refused["type"] == "error" and refused["error"]["code"] == "session_limit_reached", refused
            with pytest.raises(WebSocketDisconnect) as closed:
                second.receive_json()
            assert closed.value.code == 1013
    assert ws.runtime.protocols()["realtime"] == {"open_sessions": 0, "sessions_total": 1, "requests_total": 0}


def test_without_a_session_update_server_vad_cuts_turns(jfk):
    import soxr

    from leanspeech.audio import decode_audio

    audio = soxr.resample(decode_audio(jfk), 16000, 24000)
    pcm = (np.clip(np.concatenate([audio, np.zeros(24000)]), -1, 1) * 32767).astype("<i2").tobytes()
    with session(max_append="1MiB") as ws:
        for i in range(0, len(pcm), 48000):
            ws.send_json({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 48000]).decode()})
        # events are handled in order: the error for this one says every append was handled
        # (leaving while the server still works on them made the test client cancel it)
        ws.send_json({"type": "no.such.event", "event_id": "sync"})
        kinds: list[str] = []
        synced = False
        while len(kinds) < 200:
            event = ws.receive_json()
            if event["type"] == "error" and event["error"]["event_id"] == "sync":
                synced = True
                continue
            kinds.append(event["type"])
            assert event["type"] != "error", event
            if synced and kinds.count("conversation.item.input_audio_transcription.completed") == kinds.count(
                    "input_audio_buffer.committed") > 0 and kinds.count("input_audio_buffer.speech_started") == \
                    kinds.count("input_audio_buffer.speech_stopped"):
                break
        assert kinds[0] == "input_audio_buffer.speech_started" and "input_audio_buffer.speech_stopped" in kinds


def test_the_api_key_is_the_sdks_bearer_header():
    from starlette.websockets import WebSocketDisconnect

    settings = Settings.model_validate({"live": {"port": -1}, "wyoming": {"stt_port": -1, "tts_port": -1},
                                        "server": {"allowed_hosts": ["testserver"], "api_key": "open-sesame-0123456"}})
    app = create_app(runtime=Runtime(settings, loaders=Fakes(settings).loaders()), preload=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        with client.websocket_connect(URL, headers={"Authorization": "Bearer open-sesame-0123456"}) as ws:
            assert ws.receive_json()["type"] == "session.created"
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect(URL, headers={"Authorization": "Bearer wrong"}) as ws:
            ws.receive_json()
        assert refused.value.code == 1008
