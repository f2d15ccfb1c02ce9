"""Live speakers: WhisperLive's own client with ``enable_diarization``, known speakers over
the raw protocol, and the bad ones."""

import base64
import sys
import time
import types

import pytest

from helpers import live_session, load_audio

pytestmark = pytest.mark.model


def test_whisperlive_client_gets_speakers(server, conversation, monkeypatch, tmp_path):
    """WhisperLive's own ``Client`` (its streaming wrapper has no diarization keywords)."""
    monkeypatch.setitem(sys.modules, "pyaudio", types.ModuleType("pyaudio"))  # imported, never used here
    from whisper_live.client import Client

    done: dict[str, dict] = {}

    def on_transcript(text, segments):
        done.update({s["start"]: s for s in segments if s.get("completed")})

    client = Client("127.0.0.1", server.live_port, lang="en", model="tiny.en", log_transcription=False,
                    srt_file_path=str(tmp_path / "out.srt"), transcription_callback=on_transcript,
                    enable_diarization=True, max_speakers=4)
    deadline = time.time() + 60
    while not client.recording and time.time() < deadline:
        time.sleep(0.05)
    assert client.recording, "no SERVER_READY"
    audio = load_audio(conversation.path)
    for i in range(0, len(audio), 8000):
        client.send_packet_to_server(audio[i:i + 8000].astype("float32").tobytes())
        time.sleep(0.05)  # 10 s of audio per second
    client.send_packet_to_server(Client.END_OF_AUDIO.encode())
    client.ws_thread.join(timeout=120)  # the server closes once the last segments are sent
    labels = [seg.get("speaker") for seg in done.values()]
    assert len(labels) >= 6 and None not in labels, done
    assert 2 <= len(set(labels)) <= 4, labels


def test_known_speakers_over_the_protocol(server, conversation, references):
    known = [{"name": "pat", "audio_base64": base64.b64encode(references["piper"].read_bytes()).decode()}]
    run = live_session(server.ws_url, load_audio(conversation.path), speed=8,
                       options={"enable_diarization": True, "known_speakers": known})
    done = {s["start"]: s.get("speaker") for m in run.of("segments") for s in m["segments"] if s["completed"]}
    assert run.close_code == 1000 and done, run.messages[-3:]
    assert "pat" in set(done.values()), done
    assert all(s.get("speaker") is None for m in run.of("segments") for s in m["segments"] if not s["completed"])


@pytest.mark.parametrize("known, needle", [
    ([{"name": "pat", "audio_base64": "@@not base64@@"}], "not valid base64"),
    ([{"name": "pat", "audio_base64": base64.b64encode(b"RIFF0000WAVE" * 20).decode()}], "not decodable"),
    ([{"name": f"p{i}", "audio_base64": "AAAA"} for i in range(5)], "over the limit of 4"),
    ([{"name": "", "audio_base64": "AAAA"}], "known_speakers"),
])
def test_bad_known_speakers_are_errors(server, jfk, known, needle):
    run = live_session(server.ws_url, load_audio(jfk), options={"enable_diarization": True, "known_speakers": known})
    errors = [m for m in run.messages if m.get("status") == "ERROR"]
    assert errors and needle in errors[0]["message"], run.messages
