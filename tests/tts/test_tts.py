"""Text-to-speech: Piper voices at every precision, the OpenAI speech API, `leanspeech speak`."""

import io
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from helpers import wer

pytestmark = pytest.mark.model

SENTENCES = "The morning train leaves at seven. Please bring a warm coat and an umbrella."


@pytest.fixture(scope="module")
def stt():
    from leanspeech import Transcriber

    with Transcriber("tiny.en", precision="int8", cpu_threads=2) as t:
        yield t


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("voices")


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_round_trip_wer(precision, stt, model_dir):
    from leanspeech.audio import resample
    from leanspeech.tts import Synthesizer

    with Synthesizer(precision=precision, model_dir=model_dir) as tts:
        assert tts.resolution.precision == precision
        pcm = tts.synthesize(SENTENCES)
        rate = tts.sample_rate
    audio = resample(pcm.astype(np.float32) / 32768.0, rate)
    assert wer(SENTENCES, stt.transcribe(audio).text) <= 0.10


def test_int8_variant_is_smaller_and_reused(model_dir):
    from leanspeech.tts import Synthesizer
    from leanspeech.tts.variants import variant_path
    from leanspeech.tts.voices import resolve_voice

    voice = resolve_voice("en_US-joe-medium")
    path = variant_path(model_dir, voice, "int8")
    with Synthesizer(precision="int8", model_dir=model_dir):
        pass
    assert path.stat().st_size < voice.onnx.stat().st_size / 2.5
    stamp = path.stat().st_mtime_ns
    with Synthesizer(precision="int8", model_dir=model_dir) as again:
        assert again.model_path == path
    assert path.stat().st_mtime_ns == stamp  # made once, then reused
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_streaming_yields_before_the_whole_text_is_done(model_dir):
    import time

    from leanspeech.tts import Synthesizer

    text = " ".join(f"This is sentence number {i} of a long paragraph." for i in range(12))
    with Synthesizer(precision="float32", model_dir=model_dir) as tts:
        start = time.perf_counter()
        stream = tts.stream(text)
        first = next(stream)
        first_at = time.perf_counter() - start
        rest = list(stream)
        total = time.perf_counter() - start
    assert first.size > 0 and len(rest) >= 3
    assert first_at < total  # the first chunk came while later ones were still to be made


def test_chunking_and_limits():
    from leanspeech.errors import InvalidOptionError
    from leanspeech.tts.chunking import check_text, chunks

    parts = chunks("One. " * 100 + "word" * 100, 280)
    assert all(len(p) <= 280 for p in parts) and "".join(parts).count("word") >= 1
    with pytest.raises(InvalidOptionError, match="3000"):
        check_text("x" * 3001, 3000)
    with pytest.raises(InvalidOptionError, match="empty"):
        check_text("   \n\t ", 3000)


@pytest.mark.parametrize("text", ["Hello 👋 world 🌍!", "Ünïcödé ça va? 日本語 ok.", "supercalifragilistic" * 30,
                                  "Call 555-0199 or visit https://example.com/a?b=c at 10:30 on 2026-11-22.", "..."])
def test_odd_text_does_not_crash(text, model_dir):
    from leanspeech.tts import Synthesizer

    with Synthesizer(precision="float32", model_dir=model_dir) as tts:
        tts.synthesize(text)


# ---- the server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_server(tmp_path_factory):
    from helpers import Server

    server = Server(
        {"LEANSPEECH_MODEL_DIR": str(tmp_path_factory.mktemp("srvvoices"))}, tmp=tmp_path_factory.mktemp("log")
    )
    yield server
    server.stop()


def decoded_seconds(data: bytes) -> float:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_sdk_every_format(speech_server, fmt):
    from openai import OpenAI

    client = OpenAI(base_url=speech_server.url + "/v1", api_key="x", max_retries=0)
    response = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format=fmt)
    assert 3.0 < decoded_seconds(response.content) < 9.0


def test_sdk_pcm_and_streaming(speech_server):
    from openai import OpenAI

    client = OpenAI(base_url=speech_server.url + "/v1", api_key="x", max_retries=0)
    pcm = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format="pcm").content
    assert 3.0 < len(pcm) / 2 / 22050 < 9.0
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="en_US-joe-medium", input=SENTENCES * 3, response_format="pcm"
    ) as response:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    assert len(chunks) > 1 and sum(map(len, chunks)) > len(pcm)


def test_sse_stream_format(speech_server):
    import base64
    import json

    with httpx.stream(
        "POST",
        speech_server.url + "/v1/audio/speech",
        timeout=120,
        json={"input": SENTENCES, "voice": "alloy", "response_format": "pcm", "stream_format": "sse"},
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert len(audio) > 22050 * 2


@pytest.mark.parametrize(
    "body,status,needle",
    [
        ({"input": "   "}, 400, "empty"),
        ({"input": "hi", "voice": "nobody"}, 404, "nobody"),
        ({"input": "hi", "response_format": "wma"}, 400, "wma"),
        ({"input": "hi", "speed": 9}, 400, "speed"),
        ({"input": "x" * 3001}, 400, "3000"),
    ],
)
def test_bad_input(speech_server, body, status, needle):
    r = httpx.post(speech_server.url + "/v1/audio/speech", json=body, timeout=60)
    assert r.status_code == status and needle in r.json()["error"]["message"]


def test_voices_config_and_memory(speech_server):
    voices = httpx.get(speech_server.url + "/v1/audio/voices").json()["data"]
    assert voices[0]["id"] == "en_US-joe-medium" and voices[0]["sample_rate"] == 22050
    httpx.post(speech_server.url + "/v1/audio/speech", json={"input": "Hello."}, timeout=60)
    tts = httpx.get(speech_server.url + "/config").json()["models"]["tts"]
    assert tts["requested_precision"] == "auto" and tts["precision"] == "float32" and tts["loaded"]
    models = httpx.get(speech_server.url + "/memory").json()["models"]
    assert any(m["kind"] == "tts" and m["bytes"] > 0 for m in models)


def test_speak_cli(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_MODEL_DIR": str(tmp_path)}
    out = tmp_path / "hello.mp3"
    r = subprocess.run(
        [sys.executable, "-m", "leanspeech", "speak", SENTENCES, "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert 3.0 < decoded_seconds(out.read_bytes()) < 9.0
    r = subprocess.run(
        [sys.executable, "-m", "leanspeech", "speak", "-o", str(tmp_path / "x.wav")],
        input="From stdin.",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0 and (tmp_path / "x.wav").stat().st_size > 10000
    r = subprocess.run(
        [sys.executable, "-m", "leanspeech", "speak", "hi", "-o", str(tmp_path / "x.doc")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2 and "doc" in r.stderr and "Traceback" not in r.stderr


def test_client_vanishing_mid_stream_releases_the_voice(speech_server):
    import time

    long_text = " ".join(f"Sentence {i} is here to make the speech long enough." for i in range(40))
    with httpx.stream(
        "POST", speech_server.url + "/v1/audio/speech", timeout=120, json={"input": long_text, "response_format": "pcm"}
    ) as r:
        next(r.iter_bytes())  # one chunk, then the client is gone
    deadline = time.time() + 20
    refs = None
    while time.time() < deadline:
        tts = [m for m in httpx.get(speech_server.url + "/memory").json()["models"] if m["kind"] == "tts"]
        refs = tts[0]["refs"] if tts else 0
        if refs == 0:
            break
        time.sleep(0.2)
    assert refs == 0
    ok = httpx.post(
        speech_server.url + "/v1/audio/speech", json={"input": "Still here.", "response_format": "wav"}, timeout=60
    )
    assert ok.status_code == 200 and len(ok.content) > 1000
