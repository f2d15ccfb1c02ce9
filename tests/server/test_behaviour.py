"""Model manager, batching, limits, monitoring and security on a live server."""

import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from helpers import JFK_PHRASE, normalized

pytestmark = pytest.mark.model

URL = "/v1/audio/transcriptions"


def transcribe(server, jfk, headers=None, **data):
    return httpx.post(server.url + URL, files={"file": ("jfk.flac", jfk.read_bytes(), "audio/flac")},
                      data=data, headers=headers, timeout=180)


def concurrently(n, fn):
    results = [None] * n

    def run(i):
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_ttl_zero_unloads_after_the_request_and_rss_drops(make_server, jfk):
    server = make_server({"LEANSPEECH_STT__MODEL_TTL": "0"})
    assert httpx.get(server.url + "/memory").json()["models"] == []  # the preload was released at once
    r = transcribe(server, jfk)
    assert r.status_code == 200 and JFK_PHRASE in normalized(r.json()["text"])
    mem = httpx.get(server.url + "/memory").json()
    assert mem["models"] == []
    unload = mem["recent_unloads"][-1]
    assert unload["key"] == "stt:tiny.en"
    assert unload["rss_freed"] > 30 * 2**20, unload  # the weights really went back to the OS
    # and it loads again on the next request
    assert transcribe(server, jfk).status_code == 200


def test_idle_ttl_reaper(make_server, jfk):
    server = make_server({"LEANSPEECH_STT__MODEL_TTL": "1"})
    assert transcribe(server, jfk).status_code == 200
    # The model leaves the list when its unload starts; the counter moves when the unload has
    # closed it and measured what it gave back (CI once scraped in between): wait for both.
    deadline = time.time() + 15

    def unloaded() -> bool:
        return (httpx.get(server.url + "/memory").json()["models"] == []
                and metric(httpx.get(server.url + "/metrics").text, "leanspeech_model_unloads_total") >= 1)

    while time.time() < deadline and not unloaded():
        time.sleep(0.3)
    assert httpx.get(server.url + "/memory").json()["models"] == []
    assert metric(httpx.get(server.url + "/metrics").text, "leanspeech_model_unloads_total") >= 1


def test_budget_too_small_gives_503_not_a_crash(make_server, jfk):
    server = make_server({"LEANSPEECH_MEMORY__BUDGET": "50MB"}, wait_ready=False)
    health = httpx.get(server.url + "/health")
    assert health.status_code == 503 and "budget" in health.json()["error"]
    r = transcribe(server, jfk)
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "memory_budget_exceeded" and "tiny.en" in err["message"] and "50" in err["message"]
    assert "nothing else fits" in err["message"] or "would fit" in err["message"]
    assert server.proc.poll() is None  # still serving
    assert httpx.get(server.url + "/memory").json()["budget"]["limit"] == 50_000_000


def test_budget_fits_the_model(make_server, jfk):
    server = make_server({"LEANSPEECH_MEMORY__BUDGET": "1GiB"})
    assert transcribe(server, jfk).status_code == 200
    budget = httpx.get(server.url + "/memory").json()["budget"]
    assert budget["limit"] == 2**30 and 0 < budget["used"] < budget["limit"] and budget["headroom"] > 0


def test_concurrent_requests_are_batched(server, jfk):
    before = httpx.get(server.url + "/metrics").text
    results = concurrently(6, lambda: transcribe(server, jfk))
    assert all(r.status_code == 200 and JFK_PHRASE in normalized(r.json()["text"]) for r in results)
    after = httpx.get(server.url + "/metrics").text
    calls = metric(after, "leanspeech_batch_size_count") - metric(before, "leanspeech_batch_size_count")
    windows = metric(after, "leanspeech_batch_size_sum") - metric(before, "leanspeech_batch_size_sum")
    singles = metric(after, "leanspeech_batch_size_bucket", '{le="1.0"}') - metric(
        before, "leanspeech_batch_size_bucket", '{le="1.0"}'
    )
    assert windows == 6 and calls < 6 and singles < calls, (calls, windows, singles)


def test_full_queue_gives_429_with_retry_after(make_server, jfk):
    server = make_server({"LEANSPEECH_SERVER__MAX_QUEUE": "1", "LEANSPEECH_SERVER__BATCH_WINDOW_MS": "300"})
    results = concurrently(6, lambda: transcribe(server, jfk))
    codes = sorted(r.status_code for r in results)
    assert 200 in codes and 429 in codes, codes
    refused = next(r for r in results if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]["type"] == "rate_limit_error"
    assert transcribe(server, jfk).status_code == 200


def test_api_key(make_server, jfk):
    server = make_server({"LEANSPEECH_SERVER__API_KEY": "s3cret-key-0123456"})
    assert httpx.get(server.url + "/health").status_code == 200  # open
    for path in ("/config", "/memory", "/metrics", "/v1/models", "/info"):
        r = httpx.get(server.url + path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
    assert transcribe(server, jfk, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = transcribe(server, jfk, headers={"Authorization": "Bearer s3cret-key-0123456"})
    assert r.status_code == 200
    config = httpx.get(server.url + "/config", headers={"Authorization": "Bearer s3cret-key-0123456"}).text
    assert "s3cret-key-0123456" not in config and "**********" in config
    from openai import AuthenticationError, OpenAI

    with open(jfk, "rb") as fh, pytest.raises(AuthenticationError):
        OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0).audio.transcriptions.create(
            model="whisper-1", file=fh
        )
    with open(jfk, "rb") as fh:
        client = OpenAI(base_url=server.url + "/v1", api_key="s3cret-key-0123456", max_retries=0)
        ok = client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert JFK_PHRASE in normalized(ok.text)


def test_config_info_memory_metrics(make_server, jfk):
    server = make_server({"WL_COMPUTE_TYPE": "float16", "LEANSPEECH_STT__MODEL_TTL": "120"})
    config = httpx.get(server.url + "/config").json()
    stt = config["models"]["stt"]
    assert stt["requested_precision"] == "float16" and stt["precision"] == "float32" and stt["fallback"]
    assert "float16" in stt["reason"] and config["ttl_s"]["stt"] == 120
    assert config["limits"]["max_upload_size"] == "25MB"
    info = httpx.get(server.url + "/info").json()
    assert info["versions"]["ctranslate2"] and any(d["kind"] == "cpu" for d in info["devices"])
    model = info["models"][0]
    assert model["precision"] == "float32" and model["weight_bytes"] > 100e6 and model["last_used"] > 0
    assert model["encoder_padding_s"] is None  # Whisper's 30 s encoder input unless asked
    assert transcribe(server, jfk).status_code == 200
    mem = httpx.get(server.url + "/memory").json()
    assert mem["process"]["rss"] > 0 and mem["process"]["peak_rss"] >= mem["process"]["rss"]
    assert mem["system"]["total"] > 0 and isinstance(mem["gpus"], list)
    assert mem["models"][0]["bytes"] > 0 and mem["budget"]["limit"] is None
    cleaned = httpx.post(server.url + "/memory/cleanup").json()
    assert cleaned["cleanup"]["unloaded"] == ["stt:tiny.en"] and cleaned["models"] == []
    text = httpx.get(server.url + "/metrics").text
    assert (
        metric(text, "leanspeech_requests_total", '{method="POST",route="/v1/audio/transcriptions",status="200"}') >= 1
    )
    assert metric(text, "leanspeech_audio_seconds_total") >= 11
    for name in (
        "leanspeech_request_seconds_bucket",
        "leanspeech_real_time_factor_count",
        "leanspeech_queue_depth",
        "leanspeech_batch_size_count",
        'leanspeech_memory_bytes{kind="rss"}',
    ):
        assert name in text, name


def test_cleanup_interval(make_server, jfk):
    server = make_server({"MEMORY_CLEANUP_INTERVAL": "2"})
    transcribe(server, jfk)
    transcribe(server, jfk)
    time.sleep(0.5)
    assert httpx.get(server.url + "/memory").json()["models"] == []


def test_models_endpoints(server):
    r = httpx.post(server.url + "/v1/models/small")
    assert r.status_code == 503 and "offline" in r.json()["error"]["message"]
    assert httpx.post(server.url + "/v1/models/tiny.en").json()["present"] is True
    assert httpx.get(server.url + "/v1/models/nope").status_code == 404


def test_graceful_shutdown_finishes_in_flight_requests(make_server, long_audio):
    server = make_server()
    path, _ = long_audio
    result = {}

    def slow():
        result["r"] = httpx.post(
            server.url + URL, files={"file": ("long.wav", path.read_bytes(), "audio/wav")}, timeout=180
        )

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(1.5)
    server.proc.send_signal(signal.SIGTERM)
    t.join()
    assert result["r"].status_code == 200 and len(result["r"].json()["text"]) > 200
    assert server.proc.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful exit
    assert "Models unloaded" in server.logs()


def test_packed_concurrent_requests_each_get_their_own_words(make_server, jfk):
    """``serve --pack-requests`` (LEANSPEECH_SERVER__PACK_REQUESTS): short requests that arrive
    together share encodes, and every answer holds its own speech and nobody else's."""
    from helpers import heard_jfk, wer
    from leanspeech.measure.corpus import SENTENCES, sentences_clip

    server = make_server({"LEANSPEECH_SERVER__BATCH_WINDOW_MS": "500"}, args=("--pack-requests",))
    clips = [(jfk.read_bytes(), None), (jfk.read_bytes(), None)]
    for start, count in ((0, 2), (3, 1), (5, 2)):
        path, text = sentences_clip(count=count, start=start, pause=0.4)
        clips.append((path.read_bytes(), text))

    def ask(body):
        return httpx.post(server.url + URL, files={"file": ("clip.wav", body, "audio/wav")}, timeout=180)

    for _ in range(2):
        with ThreadPoolExecutor(len(clips)) as pool:
            answers = list(pool.map(ask, [body for body, _ in clips]))
        for r, (_, reference) in zip(answers, clips, strict=True):
            assert r.status_code == 200, r.text
            text = r.json()["text"]
            if reference is None:
                assert heard_jfk(text), text
            else:
                assert wer(reference, text) < 0.2, (text, reference)
                others = [s for s in SENTENCES[:8] if s not in reference]
                assert not any(normalized(s)[:25] in normalized(text) for s in others), (text, reference)
    metrics = httpx.get(server.url + "/metrics").text
    assert metric(metrics, "leanspeech_packed_windows_total", '{outcome="given_back"}') >= 4, metrics


def test_a_shorter_encoder_input_is_asked_for_on_the_command_line(make_server, jfk):
    """``serve --encoder-padding 5`` (LEANSPEECH_STT__ENCODER_PADDING): the served model encodes
    a short window's audio plus 5 s, says so in /info, and still hears the words; a value out
    of range is refused before the server starts."""
    from helpers import heard_jfk

    server = make_server(args=("--encoder-padding", "5"))
    r = transcribe(server, jfk)
    assert r.status_code == 200 and heard_jfk(r.json()["text"]), r.text
    assert httpx.get(server.url + "/config").json()["settings"]["stt"]["encoder_padding"] == 5.0
    assert httpx.get(server.url + "/info").json()["models"][0]["encoder_padding_s"] == 5.0
    refused = subprocess.run([sys.executable, "-m", "leanspeech", "serve", "--encoder-padding", "31"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "encoder-padding" in refused.stderr, refused.stderr
