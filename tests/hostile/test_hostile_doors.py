"""One key, every door: the live port at any path, WebSockets, CORS, the log, the start-up
checks, Host names and WebSocket Origins, state changes, /health."""

import json
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from helpers import HOSTILE_KEY, free_port, no_tracebacks, server_log

pytestmark = [pytest.mark.hostile, pytest.mark.model, pytest.mark.timeout(300)]

ORIGIN = "http://app.example"


@pytest.fixture(scope="module")
def keyed(make_server):
    # HF_HUB_OFFLINE=0: the server itself must refuse to download (LEANSPEECH_SERVER__ALLOW_DOWNLOADS)
    return make_server({"LEANSPEECH_SERVER__API_KEY": HOSTILE_KEY, "HF_HUB_OFFLINE": "0",
                        "LEANSPEECH_SERVER__CORS_ORIGINS": json.dumps([ORIGIN])})


def _opens(url: str, **kw) -> dict:
    """The first message of a WhisperLive session at ``url`` (raises InvalidStatus when refused)."""
    with connect(url, open_timeout=30, **kw) as ws:
        ws.send(json.dumps({"uid": "u", "language": "en", "model": "tiny.en"}))
        return json.loads(ws.recv(timeout=30))


@pytest.mark.parametrize("path", ["/", "/ui/x", "/v1/live", "/health"])
def test_the_live_port_needs_the_key_on_every_path(keyed, path):
    with pytest.raises(InvalidStatus) as refused:
        _opens(f"ws://127.0.0.1:{keyed.live_port}{path}")
    assert refused.value.response.status_code == 403
    ok = _opens(f"ws://127.0.0.1:{keyed.live_port}{path}",
                additional_headers={"Authorization": f"Bearer {HOSTILE_KEY}"})
    assert ok["message"] == "SERVER_READY"


@pytest.mark.parametrize("path", ["/", "/ui/x", "/v1/live", "/v1/realtime"])
def test_every_websocket_on_the_http_port_needs_the_key(keyed, path):
    with pytest.raises(InvalidStatus) as refused:
        _opens(f"ws://127.0.0.1:{keyed.port}{path}")
    assert refused.value.response.status_code == 403


def test_a_cors_preflight_is_answered_before_the_key(keyed):
    r = httpx.options(keyed.url + "/v1/audio/transcriptions",
                      headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                               "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    # the real request still needs the key, and its 401 carries CORS headers (the page can read it)
    r = httpx.get(keyed.url + "/config", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN


def test_the_key_never_reaches_the_log(keyed):
    with pytest.raises(InvalidStatus):
        _opens(f"ws://127.0.0.1:{keyed.port}/v1/live?token=wrong-{HOSTILE_KEY}")
    assert _opens(f"ws://127.0.0.1:{keyed.port}/v1/live?token={HOSTILE_KEY}")["message"] == "SERVER_READY"
    assert httpx.get(keyed.url + "/config", params={"token": HOSTILE_KEY},
                     headers={"Authorization": f"Bearer {HOSTILE_KEY}"}).status_code == 200
    log = server_log(keyed)
    assert "token=***" in log  # the URLs were logged, redacted
    assert HOSTILE_KEY not in log


def test_health_shows_no_internals_without_the_key(keyed):
    r = httpx.get(keyed.url + "/health")
    assert r.status_code == 200 and set(r.json()) == {"status", "uptime_s"}


def test_a_get_changes_nothing(keyed):
    auth = {"Authorization": f"Bearer {HOSTILE_KEY}"}
    r = httpx.get(keyed.url + "/memory", params={"cleanup": "true"}, headers=auth)
    assert r.status_code == 400 and "POST /memory/cleanup" in r.json()["error"]["message"]
    r = httpx.post(keyed.url + "/memory/cleanup", headers=auth)
    assert r.status_code == 200 and "cleanup" in r.json()
    assert httpx.post(keyed.url + "/memory/cleanup").status_code == 401


def test_a_rebound_host_name_and_a_foreign_origin_are_refused(keyed):
    # DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1
    r = httpx.get(keyed.url + "/health", headers={"Host": f"evil.example:{keyed.port}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host"
    auth = {"Authorization": f"Bearer {HOSTILE_KEY}"}
    with pytest.raises(InvalidStatus) as refused:
        _opens(f"ws://127.0.0.1:{keyed.port}/v1/live", origin="http://evil.example", additional_headers=auth)
    assert refused.value.response.status_code == 403
    # the server's own page, and an allowed origin, may open one
    assert _opens(f"ws://127.0.0.1:{keyed.port}/v1/live", origin=f"http://127.0.0.1:{keyed.port}",
                  additional_headers=auth)["message"] == "SERVER_READY"
    assert _opens(f"ws://127.0.0.1:{keyed.port}/v1/live", origin=ORIGIN,
                  additional_headers=auth)["message"] == "SERVER_READY"
    assert httpx.get(f"http://localhost:{keyed.port}/health").status_code == 200
    no_tracebacks(keyed)


@pytest.mark.parametrize("key", ["", "   ", "short-key"])
def test_an_empty_or_short_key_is_refused_at_start(key):
    env = {"HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__API_KEY": key}
    import os

    out = subprocess.run([sys.executable, "-m", "leanspeech", "serve", "--port", str(free_port())],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "at least 16 characters" in out.stderr


def test_wyoming_off_loopback_with_a_key_needs_an_opt_in():
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__API_KEY": HOSTILE_KEY,
           "LEANSPEECH_WYOMING__HOST": "0.0.0.0"}
    out = subprocess.run([sys.executable, "-m", "leanspeech", "serve", "--port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "ALLOW_UNAUTHENTICATED" in out.stderr, out.stderr[-2000:]


def test_serve_loads_no_model_it_would_have_to_download(keyed, jfk):
    from openai import APIStatusError, OpenAI

    client = OpenAI(base_url=keyed.url + "/v1", api_key=HOSTILE_KEY, max_retries=0)
    with open(jfk, "rb") as fh, pytest.raises(APIStatusError) as refused:
        client.audio.transcriptions.create(model="small.en", file=fh)
    assert refused.value.status_code == 503
    assert "ALLOW_DOWNLOADS" in refused.value.message
    r = httpx.post(keyed.url + "/v1/models/small.en", headers={"Authorization": f"Bearer {HOSTILE_KEY}"})
    assert r.status_code == 503
