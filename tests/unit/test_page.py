"""The page's server side in-process (fake engines): its files are served from the package
with nothing fetched from elsewhere, every module it imports is there and installed, the API
key reaches WebSockets as a subprotocol, the streamed transcript carries progress and the
verbose body, a speech request can ask for a voice variant, and the quick plan runs one at
a time. The page itself is tested in a real browser in tests/browser."""

import asyncio
import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from fakes import Fakes, tone, wav_bytes
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from test_app import app_client, audio_file, error, make_settings

from leanspeech.runtime import Runtime
from leanspeech.server import page_routes
from leanspeech.server.app import create_app
from leanspeech.web import STATIC

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for p in STATIC.rglob("*") if p.is_file())
TEXT = [p for p in FILES if p.suffix in (".html", ".js", ".css", ".svg")]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_the_page_fetches_nothing_from_elsewhere():
    remote = re.compile(r"""(src|href)=["']?(https?:)?//|@import\s+url\(\s*["']?(https?:)?//|"""
                        r"""from\s+["'](https?:)?//|import\(\s*["'](https?:)?//|url\(\s*["']?(https?:)?//""")
    for path in TEXT:
        hits = remote.findall(path.read_text())
        assert not hits, f"{path.relative_to(STATIC)} loads something from another host: {hits}"


def test_every_module_the_page_imports_is_in_the_package():
    for path in [p for p in TEXT if p.suffix == ".js"]:
        for target in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports a missing {target}"
    html = (STATIC / "index.html").read_text()
    for url in re.findall(r"""(?:src|href)=["'](/ui/[^"']+)["']""", html):
        assert (STATIC / url.removeprefix("/ui/")).is_file(), f"index.html names a missing {url}"
    worklet = (STATIC / "js" / "live.js").read_text()
    for url in re.findall(r"""addModule\(["'](/ui/[^"']+)["']""", worklet):
        assert (STATIC / url.removeprefix("/ui/")).is_file(), url


def test_every_file_of_the_page_is_installed_as_package_data():
    import tomllib  # Python 3.11+

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["leanspeech.web"]
    web = STATIC.parent
    installed = {p for pattern in globs for p in web.glob(pattern) if p.is_file()}
    assert set(FILES) <= installed, sorted(str(p.relative_to(web)) for p in set(FILES) - installed)


def test_the_vendored_library_ships_with_its_licence():
    assert "MIT License" in (STATIC / "vendor" / "uPlot.LICENSE").read_text()
    assert "uPlot.js (μPlot)" in (STATIC / "vendor" / "uPlot.esm.js").read_text()[:400]


def test_the_measured_results_shipped_are_the_committed_ones():
    import importlib.util

    spec = importlib.util.spec_from_file_location("web_measured", ROOT / "benchmarks" / "web_measured.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, source in module.SOURCES.items():
        assert (STATIC / "measured" / name).read_bytes() == (ROOT / source).read_bytes(), (
            f"{name} differs from {source}: run python benchmarks/web_measured.py")
    assert set(page_routes.CHARTS) <= set(module.SOURCES)


@pytest.mark.anyio
async def test_page_and_files_are_served_and_open_without_the_key():
    async with app_client(make_settings(server={"api_key": "k3y-0123456789abc"})) as c:
        r = await c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/ui/js/main.js">' in r.text
        r = await c.get("/ui/js/main.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
        assert (await c.get("/ui/vendor/uPlot.min.css")).status_code == 200
        assert (await c.get("/ui/nothing.js")).status_code == 404
        assert (await c.get("/ui/../config")).status_code in (401, 404)  # never a way around the key
        error(await c.get("/config"), 401, "invalid_api_key")
        error(await c.get("/plan"), 401, "invalid_api_key")
        assert (await c.get("/plan", headers={"Authorization": "Bearer k3y-0123456789abc"})).status_code == 200
        keyed = {"Authorization": "Bearer k3y-0123456789abc"}
        assert "/" not in (await c.get("/openapi.json", headers=keyed)).json()["paths"]


@pytest.mark.anyio
async def test_the_page_can_be_turned_off():
    async with app_client(make_settings(server={"page": False})) as c:
        assert (await c.get("/")).status_code == 404
        assert (await c.get("/ui/js/main.js")).status_code == 404


def _live_app(key: str | None):
    server = {"api_key": key} if key else {}
    settings = make_settings(server={**server, "allowed_hosts": ["testserver"]})  # TestClient's WebSocket host
    return create_app(runtime=Runtime(settings, loaders=Fakes(settings).loaders()), preload=False)


def _b64(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def test_websocket_key_as_a_subprotocol():
    key = "sé same/+ 0123456789"  # any key: the page sends it base64url-encoded
    with TestClient(_live_app(key), base_url="http://127.0.0.1") as client:
        offered = ["leanspeech", "leanspeech.key." + _b64(key)]
        with client.websocket_connect("/v1/live", subprotocols=offered) as ws:
            assert ws.accepted_subprotocol == "leanspeech"  # a browser drops a socket accepted with none
            ws.send_text(json.dumps({"uid": "u1", "language": "en", "model": "tiny.en"}))
            assert ws.receive_json()["message"] == "SERVER_READY"
        with pytest.raises(WebSocketDisconnect) as refused, \
                client.websocket_connect("/v1/live", subprotocols=["leanspeech", "leanspeech.key." + _b64("other")]):
            pass
        assert refused.value.code == 1008


def test_realtime_accepts_openais_browser_key_protocol():
    with TestClient(_live_app("open-sesame-0123456"), base_url="http://127.0.0.1") as client:
        with client.websocket_connect("/v1/realtime?intent=transcription",
                                      subprotocols=["realtime", "openai-insecure-api-key.open-sesame-0123456"]) as ws:
            assert ws.accepted_subprotocol == "realtime"
            assert ws.receive_json()["type"] == "session.created"
        for wrong in (["realtime", "openai-insecure-api-key.nope"], ["leanspeech", "leanspeech.key.%%%"], ["realtime"]):
            with pytest.raises(WebSocketDisconnect) as refused, \
                    client.websocket_connect("/v1/realtime?intent=transcription", subprotocols=wrong) as ws:
                ws.receive_json()
            assert refused.value.code == 1008, wrong


def test_without_a_key_a_socket_that_offers_none_is_accepted_with_none():
    with TestClient(_live_app(None), base_url="http://127.0.0.1") as client, client.websocket_connect("/v1/live") as ws:
        assert ws.accepted_subprotocol is None
        ws.send_text(json.dumps({"uid": "u1", "language": "en"}))
        assert ws.receive_json()["message"] == "SERVER_READY"
        ws.send_bytes((tone(1.0) * 0.5).astype(np.float32).tobytes())
        ws.send_bytes(b"END_OF_AUDIO")


def _events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.anyio
async def test_streamed_verbose_json_has_progress_then_the_whole_body():
    async with app_client() as c:
        r = await c.post("/v1/audio/transcriptions", files=audio_file(wav_bytes(65.0)),
                         data={"stream": "true", "response_format": "verbose_json"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.text)
        deltas = [e for e in events if e["type"] == "transcript.text.delta"]
        progress = [e["progress"] for e in deltas]
        assert len(deltas) == 3 and progress == sorted(progress) and progress[-1] == 1.0 and 0 < progress[0] < 1
        done = events[-1]
        assert done["type"] == "transcript.text.done" and done["duration"] == 65.0 and len(done["segments"]) >= 3
        info = done["leanspeech"]
        assert info["precision"] and info["requested_precision"] and info["precision_reason"] and info["decode_s"] >= 0
        r = await c.post("/v1/audio/translations", files=audio_file(), data={"stream": "true"})
        assert _events(r.text)[-1]["type"] == "transcript.text.done"


@pytest.mark.anyio
async def test_verbose_json_says_what_ran():
    async with app_client() as c:
        body = (await c.post("/v1/audio/transcriptions", files=audio_file(),
                             data={"response_format": "verbose_json"})).json()
        assert set(body["leanspeech"]) >= {"model", "device", "precision", "requested_precision", "precision_reason",
                                           "decode_s", "rtf"}


@pytest.mark.anyio
async def test_a_speech_request_can_ask_for_a_voice_variant():
    async with app_client() as c:
        r = await c.post("/v1/audio/speech", json={"input": "Hi there.", "response_format": "pcm", "precision": "int8"})
        assert r.status_code == 200 and r.headers["x-sample-rate"] == "16000" and len(r.content) > 1000
        for same in ({}, {"precision": "auto"}):  # the server's setting: the one plain voice
            r = await c.post("/v1/audio/speech", json={"input": "Hi there.", "response_format": "pcm", **same})
            assert r.status_code == 200
        names = {m["name"] for m in (await c.get("/memory")).json()["models"] if m["kind"] == "tts"}
        assert names == {"en_US-joe-medium@int8", "en_US-joe-medium"}, names  # each variant is a model of its own
        error(await c.post("/v1/audio/speech", json={"input": "Hi.", "precision": "int4"}), 400, None, "precision")


@pytest.mark.anyio
async def test_quick_plan_runs_one_at_a_time(monkeypatch):
    started = asyncio.Event()
    release = asyncio.Event()

    async def fake_plan(model, precision, batch, settings):
        started.set()
        await release.wait()
        return {"rows": [{"model": model, "precision": precision, "batch": batch, "ok": True}],
                "recommendation": {"fits": True}}

    monkeypatch.setattr(page_routes, "_run_plan", fake_plan)
    async with app_client() as c:
        error(await c.post("/plan", json={"model": "nope"}), 404, "model_not_found")
        error(await c.post("/plan", json={"model": "../x"}), 400, "invalid_model_name")
        error(await c.post("/plan", json={"model": "tiny.en", "precision": "int9"}), 400, "invalid_option", "int9")
        first = asyncio.ensure_future(c.post("/plan", json={"model": "tiny.en", "precision": "int8"}))
        await asyncio.wait_for(started.wait(), 10)
        error(await c.post("/plan", json={"model": "tiny.en"}), 409, "busy", "one at a time")
        assert (await c.get("/plan")).json()["running_s"] is not None
        release.set()
        r = await first
        assert r.status_code == 200 and r.json()["rows"][0]["precision"] == "int8"
        release.clear()
        started.clear()
        second = asyncio.ensure_future(c.post("/plan", json={}))  # the default model at the server's precision
        await asyncio.wait_for(started.wait(), 10)
        release.set()
        r = await second
        assert r.status_code == 200 and r.json()["rows"][0]["precision"] == "int8", r.text
        state = (await c.get("/plan")).json()
        assert state["running_s"] is None and state["last"]["rows"][0]["model"] == "tiny.en"
        assert state["measured"]["rows"] and state["charts"]


@pytest.mark.anyio
async def test_quick_plan_past_its_time_limit_is_stopped(monkeypatch, tmp_path):
    import sys

    script = tmp_path / "slow.py"
    script.write_text("import time; time.sleep(60)\n")
    real_exec = asyncio.create_subprocess_exec

    async def slow_exec(*cmd, **kw):
        return await real_exec(sys.executable, str(script), **kw)

    monkeypatch.setattr(page_routes.asyncio, "create_subprocess_exec", slow_exec)
    async with app_client(make_settings(server={"plan_timeout": 1})) as c:
        r = await c.post("/plan", json={"model": "tiny.en", "precision": "int8"})
        error(r, 504, "timeout", "1 s")
        assert (await c.get("/plan")).json()["running_s"] is None
