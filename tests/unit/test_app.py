"""``create_app`` in-process, through httpx's ASGI transport, on a runtime with fake engines:
every route's answers and every error status and body, without a model or a socket."""

import asyncio
import contextlib
import json
import threading

import httpx
import pytest
from fakes import FakeEngine, Fakes, wav_bytes

from leanspeech.config import Settings
from leanspeech.runtime import Runtime
from leanspeech.server.app import create_app

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_settings(**sections) -> Settings:
    base = {"stt": {"vad": False}, "live": {"port": -1}, "wyoming": {"stt_port": -1, "tts_port": -1}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return Settings.model_validate(base)


@contextlib.asynccontextmanager
async def app_client(settings=None, *, engine_kw=None, stt_bytes=100 * 2**20, headers=None):
    settings = settings or make_settings()
    fakes = Fakes(settings, engine_kw=engine_kw or {}, stt_bytes=stt_bytes)
    app = create_app(runtime=Runtime(settings, loaders=fakes.loaders()), preload=True)
    async with app.router.lifespan_context(app):
        # the app answers 500 for an unexpected error and re-raises it (for the server's log);
        # the client sees the answer, as over a socket
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
            for _ in range(100):  # the preload runs in a thread
                if (await client.get("/health")).status_code != 503:
                    break
                await asyncio.sleep(0.02)
            client.fakes = fakes
            yield client


def audio_file(data=None, name="a.wav", ctype="audio/wav"):
    return {"file": (name, data if data is not None else wav_bytes(2.0), ctype)}


def error(r, status, code=None, *needles):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    if code is not None:
        assert err["code"] == code, err
    for needle in needles:
        assert needle in err["message"], err
    return err


# ---- answers -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,check", [
    ("json", lambda r: r.json()["text"] == "hello from the fake engine." and r.json()["usage"]["seconds"] == 2.0),
    ("text", lambda r: r.text == "hello from the fake engine.\n"),
    ("srt", lambda r: r.text.startswith("1\n00:00:00,000 --> ")),
    ("vtt", lambda r: r.text.startswith("WEBVTT") and r.headers["content-type"].startswith("text/vtt")),
    ("verbose_json", lambda r: r.json()["segments"][0]["text"] == " hello from the fake engine."
     and r.json()["language"] == "en" and r.json()["duration"] == 2.0),
])
async def test_transcription_formats(fmt, check):
    async with app_client() as c:
        r = await c.post(URL, files=audio_file(), data={"response_format": fmt})
        assert r.status_code == 200 and check(r), r.text


async def test_word_timestamps_and_translation():
    async with app_client() as c:
        r = await c.post(URL, files=audio_file(), data={"response_format": "verbose_json",
                                                        "timestamp_granularities[]": ["word", "segment"]})
        words = r.json()["words"]
        assert [w["word"] for w in words] == ["hello", "from", "the", "fake", "engine."]
        assert words[0]["start"] == 0.0 and words[-1]["end"] == pytest.approx(2.0)
        r = await c.post("/v1/audio/translations", files=audio_file())
        assert r.status_code == 200 and r.json()["text"]


async def test_streamed_deltas_then_done():
    async with app_client() as c:
        r = await c.post(URL, files=audio_file(wav_bytes(65.0)), data={"stream": "true"})
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        assert [e["type"] for e in events] == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
        assert events[-1]["text"].count("hello") == 3


async def test_the_model_is_loaded_once_and_requests_batch_together():
    """Four requests at once share decodes. The first decode is held until every other window
    is queued behind it, so the test does not depend on when the requests reach the batcher:
    with a fixed wait (a 300 ms window behind a 0.5 s decode) it failed twice after the whole
    suite had run in one process, each request decoded alone."""
    async with app_client(make_settings(server={"batch_window_ms": 50})) as c:
        engine = c.fakes.engines[0]
        batcher = c.fakes.batchers[0]
        engine.gate = threading.Event()
        posts = [asyncio.create_task(c.post(URL, files=audio_file())) for _ in range(4)]
        for _ in range(500):
            if engine.waiting + batcher.depth >= 4:
                break
            await asyncio.sleep(0.02)
        engine.gate.set()
        results = await asyncio.gather(*posts)
        assert all(r.status_code == 200 for r in results)
        assert len(c.fakes.engines) == 1 and sum(engine.calls) == 4 and max(engine.calls) > 1, engine.calls
        metrics = (await c.get("/metrics")).text
        assert "leanspeech_batch_size_count" in metrics and 'leanspeech_models_loaded{kind="stt"' in metrics


async def test_speech_streams_audio_and_voices_alias_the_configured_voice():
    async with app_client() as c:
        r = await c.post("/v1/audio/speech", json={"input": "Hello there. How are you.", "response_format": "wav"})
        assert r.status_code == 200 and r.content[:4] == b"RIFF" and len(r.content) > 16000
        r = await c.post("/v1/audio/speech", json={"input": "Hi.", "response_format": "pcm", "stream_format": "sse"})
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        assert events[0]["type"] == "speech.audio.delta" and events[-1]["type"] == "speech.audio.done"
        voices = (await c.get("/v1/audio/voices")).json()
        assert voices["aliases"]["alloy"] == "en_US-joe-medium"


async def test_monitoring_routes():
    async with app_client(make_settings(memory={"budget": "1GiB"})) as c:
        assert (await c.get("/health")).json()["status"] == "ok"
        await c.post(URL, files=audio_file())
        mem = (await c.get("/memory")).json()
        assert mem["models"][0]["name"] == "tiny.en" and mem["budget"]["limit"] == 2**30
        assert mem["budget"]["used"] == 100 * 2**20
        error(await c.get("/memory", params={"cleanup": "true"}), 400, "invalid_option")  # a GET changes nothing
        cleaned = (await c.post("/memory/cleanup")).json()
        assert cleaned["cleanup"]["unloaded"] == ["stt:tiny.en"] and cleaned["models"] == []
        config = (await c.get("/config")).json()
        assert config["memory"]["budget"] == 2**30 and config["limits"]["max_batch"] == 8
        info = (await c.get("/info")).json()
        assert info["versions"]["leanspeech"] and info["models"] == []


# ---- errors ------------------------------------------------------------------------------

async def test_bad_audio_errors():
    async with app_client() as c:
        error(await c.post(URL, files=audio_file(b"\x00garbage" * 100, "x.mp3", "audio/mpeg")), 400, "invalid_audio",
              "x.mp3", "not decodable")
        error(await c.post(URL, files=audio_file(b"", "e.wav")), 400, "empty_audio", "empty")
        error(await c.post(URL, files=audio_file(b"just text", "t.txt", "text/plain")), 415, "unsupported_media",
              "not audio")
        error(await c.post(URL, data={"model": "whisper-1"}), 400, "invalid_value", "file")


async def test_bad_option_errors():
    async with app_client() as c:
        f = audio_file
        error(await c.post(URL, files=f(), data={"model": "huge-v9"}), 404, "model_not_found", "huge-v9", "tiny.en")
        error(await c.post(URL, files=f(), data={"model": "../etc"}), 400, "invalid_model_name", "invalid model name")
        error(await c.post(URL, files=f(), data={"response_format": "docx"}), 400, "invalid_option", "docx")
        error(await c.post(URL, files=f(), data={"response_format": "verbose_json",
                                                 "timestamp_granularities[]": "sentence"}), 400, "invalid_option",
              "sentence")
        error(await c.post(URL, files=f(), data={"timestamp_granularities[]": "word"}), 400, "invalid_option",
              "verbose_json")
        error(await c.post(URL, files=f(), data={"temperature": "7"}), 400, "invalid_option", "temperature")
        error(await c.post(URL, files=f(), data={"stream": "true", "response_format": "srt"}), 400, "invalid_option",
              "stream")
        error(await c.get("/v1/nothing"), 404, None, "no route GET /v1/nothing")


async def test_speech_errors():
    async with app_client() as c:
        speech = "/v1/audio/speech"
        error(await c.post(speech, json={"input": "  "}), 400, "invalid_option", "empty")
        error(await c.post(speech, json={"input": "x" * 3001}), 400, "invalid_option", "3001", "3000")
        error(await c.post(speech, json={"input": "Hi.", "speed": 9}), 400, "invalid_option", "speed")
        error(await c.post(speech, json={"input": "Hi.", "voice": "nobody"}), 404, "voice_not_found", "nobody")
        error(await c.post(speech, json={"input": "Hi.", "response_format": "ogg"}), 400, "invalid_option", "ogg")
        error(await c.post(speech, json={"input": "Hi.", "stream_format": "ws"}), 400, "invalid_option", "ws")
        error(await c.post(speech, json={"voice": "alloy"}), 400, "invalid_value", "input")


async def test_upload_limit_is_413():
    async with app_client(make_settings(server={"max_upload_size": "10KB"})) as c:
        error(await c.post(URL, files=audio_file(wav_bytes(2.0))), 413, "payload_too_large", "10KB")


async def test_full_queue_is_429_with_retry_after():
    settings = make_settings(server={"max_queue": 1, "batch_window_ms": 0, "max_batch": 1})
    async with app_client(settings, engine_kw={"decode_s": 0.5}) as c:
        results = await asyncio.gather(*[c.post(URL, files=audio_file()) for _ in range(8)])
        codes = sorted(r.status_code for r in results)
        assert 200 in codes and 429 in codes, codes
        refused = next(r for r in results if r.status_code == 429)
        error(refused, 429, "queue_full", "queue is full")
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]["type"] == "rate_limit_error"


async def test_over_the_budget_is_503_and_health_says_why():
    async with app_client(make_settings(memory={"budget": "50MB"})) as c:
        health = await c.get("/health")
        assert health.status_code == 503 and "budget" in health.json()["error"]
        err = error(await c.post(URL, files=audio_file()), 503, "memory_budget_exceeded", "tiny.en", "50")
        assert err["type"] == "server_error"


async def test_an_engine_failure_is_500_and_the_next_request_works():
    async with app_client(engine_kw={"fail": RuntimeError("boom")}) as c:
        error(await c.post(URL, files=audio_file()), 500, "internal_error", "RuntimeError")
        c.fakes.engines[0].fail = None
        assert (await c.post(URL, files=audio_file())).status_code == 200


async def test_api_key():
    settings = make_settings(server={"api_key": "k3y-0123456789abc"})
    async with app_client(settings) as c:
        assert (await c.get("/health")).status_code == 200
        for path in ("/config", "/memory", "/metrics", "/v1/models", "/info", "/v1/audio/voices"):
            error(await c.get(path), 401, "invalid_api_key")
        error(await c.post(URL, files=audio_file(), headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
        ok = await c.post(URL, files=audio_file(), headers={"Authorization": "Bearer k3y-0123456789abc"})
        assert ok.status_code == 200


async def test_a_bad_request_beside_a_good_one_harms_nothing():
    async with app_client(engine_kw={"decode_s": 0.2}) as c:
        good = asyncio.ensure_future(c.post(URL, files=audio_file()))
        bad = [c.post(URL, files=audio_file(b"junk" * 50, "x.wav")) for _ in range(5)]
        results = await asyncio.gather(*bad)
        assert all(r.status_code == 400 for r in results)
        assert (await good).json()["text"] == "hello from the fake engine."


def test_the_engine_fake_follows_the_protocol():
    from leanspeech.stt.engine import Engine

    assert isinstance(FakeEngine(), Engine)


async def test_the_page_writes_subtitles_with_the_servers_own_writers():
    """The page has no subtitle writer: ``POST /transcript/{format}`` gives what
    ``response_format`` gives for the same segments (speaker labels, ``-->`` in the text,
    empty segments skipped)."""
    from leanspeech.stt.formats import render
    from leanspeech.stt.result import Segment, Transcription

    segments = [{"start": 0.0, "end": 1.5, "text": " a --> b", "speaker": "channel 0"},
                {"start": 1.5, "end": 2.0, "text": "  "},
                {"start": 2.0, "end": 3.25, "text": " hello", "speaker": "channel 1"}]
    expected = Transcription(tuple(Segment(i + 1, s["start"], s["end"], s["text"], speaker=s.get("speaker"))
                                   for i, s in enumerate(segments)), None)  # type: ignore[arg-type]
    async with app_client() as c:
        for fmt in ("srt", "vtt", "txt", "tsv"):
            r = await c.post(f"/transcript/{fmt}", json={"segments": segments, "text": "ignored"})
            assert r.status_code == 200 and r.text == render(expected, fmt), (fmt, r.text)
        assert "[channel 0] a -> b" in r.text
        error(await c.post("/transcript/docx", json={"segments": []}), 400)
        error(await c.post("/transcript/srt", json={"segments": [{"start": -1, "end": 1, "text": "x"}]}), 400)
