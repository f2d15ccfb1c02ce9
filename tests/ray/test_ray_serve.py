"""``leanspeech serve --ray`` joining a local Ray cluster (2 CPUs, loopback): two replicas
answer the openai SDK and a burst is spread over both (``X-Leanspeech-Replica``); a replica
killed mid-load leaves later requests unharmed and is brought back; the live WebSocket and
/metrics work through Ray's proxy; SIGTERM drains an in-flight request."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from helpers import JFK_PHRASE, free_port, normalized

pytestmark = [pytest.mark.model, pytest.mark.ray, pytest.mark.slow]
ray = pytest.importorskip("ray")


class Served:
    """One ``serve --ray`` on the module's Ray cluster; ``up()`` starts it again if a test
    stopped it (the SIGTERM test), so the tests pass in any order."""

    def __init__(self, log):
        self.log, self.proc, self.url = log, None, ""

    def up(self) -> tuple[str, subprocess.Popen]:
        if self.proc is None or self.proc.poll() is not None:
            port = free_port()
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_STT__CPU_THREADS": "1"}
            self.proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--ray", "--replicas", "2",
                                          "--port", str(port), "--address", ray.get_runtime_context().gcs_address],
                                         env=env, stdout=self.log, stderr=subprocess.STDOUT)
            self.url = f"http://127.0.0.1:{port}"
            _wait_healthy(self.url, self.proc, self.log, replicas=2)
        return self.url, self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    server = Served(open(tmp_path_factory.mktemp("ray") / "serve.log", "w+"))
    try:
        yield server
    finally:
        server.stop()
        ray.shutdown()


@pytest.fixture
def served(cluster_server):
    return cluster_server.up()


def _logs(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:]


def _wait_healthy(url, proc, log, replicas, timeout=240):
    """Until ``replicas`` distinct replicas answer /health with 200."""
    seen, deadline = set(), time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve --ray exited with {proc.returncode}: {_logs(log)}")
        try:
            r = httpx.get(url + "/health", timeout=5)
            if r.status_code == 200:
                seen.add(r.headers["x-leanspeech-replica"])
                if len(seen) >= replicas:
                    return seen
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"only {len(seen)} replicas became healthy: {_logs(log)}")


def _transcribe(url, jfk):
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
    with open(jfk, "rb") as fh:
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=fh)
    return raw.headers["x-leanspeech-replica"], raw.parse().text


def test_two_replicas_answer_the_sdk_and_a_burst_is_spread(served, jfk):
    url, _ = served
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _transcribe(url, jfk), range(8)))
    assert all(JFK_PHRASE in normalized(text) for _, text in answers)
    assert len({replica for replica, _ in answers}) == 2, answers
    metrics = httpx.get(url + "/metrics", timeout=10)
    assert metrics.status_code == 200 and "leanspeech_requests_total" in metrics.text


def test_the_live_websocket_through_the_proxy(served, jfk):
    import numpy as np
    from websockets.sync.client import connect

    from leanspeech.audio import decode_audio

    url, _ = served
    audio = decode_audio(jfk)
    with connect(url.replace("http", "ws") + "/v1/live", open_timeout=30) as ws:
        ws.send(json.dumps({"uid": "ray", "language": "en", "model": "tiny.en"}))
        assert json.loads(ws.recv(timeout=30))["message"] == "SERVER_READY"
        for i in range(0, audio.shape[0], 16000):
            ws.send(audio[i:i + 16000].astype(np.float32).tobytes())
        ws.send(b"END_OF_AUDIO")
        texts = []
        try:
            while True:
                msg = json.loads(ws.recv(timeout=60))
                texts = [s["text"] for s in msg.get("segments", [])] or texts
        except Exception:  # the server closes after the last segments
            pass
    assert "fellow americans" in normalized(" ".join(texts))


def _replicas() -> list[dict]:
    """Ray Serve's replica actors (named, in the "serve" namespace; no dashboard needed)."""
    return [a for a in ray.util.list_named_actors(all_namespaces=True) if "SERVE_REPLICA" in a["name"]]


def test_a_replica_killed_mid_load_is_replaced(served, jfk):
    url, _ = served
    replicas = _replicas()
    assert len(replicas) == 2, replicas
    victim = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        inflight = [pool.submit(_transcribe, url, jfk) for _ in range(6)]
        time.sleep(0.5)
        ray.kill(victim, no_restart=True)
        outcomes = []
        for f in inflight:
            try:
                outcomes.append(f.result())
            except Exception as exc:  # a request on the killed replica fails cleanly: an HTTP error
                outcomes.append(exc)
    for o in outcomes:
        assert isinstance(o, tuple) or "500" in str(o) or "502" in str(o) or "503" in str(o) or \
            "Error code" in str(o), o
    assert any(isinstance(o, tuple) for o in outcomes)
    for _ in range(3):  # later requests succeed
        _, text = _transcribe(url, jfk)
        assert JFK_PHRASE in normalized(text)
    deadline = time.time() + 180
    while time.time() < deadline:  # Ray Serve brings the replica back: two replicas, one of them new
        names = {a["name"] for a in _replicas()}
        if len(names) == 2 and replicas[0]["name"] not in names:
            break
        time.sleep(1)
    else:
        pytest.fail(f"the killed replica was not replaced: {_replicas()}")
    seen = set()
    for _ in range(40):  # and the new one serves
        r = httpx.get(url + "/health", timeout=10)
        if r.status_code == 200:
            seen.add(r.headers["x-leanspeech-replica"])
        if len(seen) == 2:
            break
        time.sleep(0.5)
    assert len(seen) == 2, seen


def test_sigterm_drains_an_inflight_request(served, jfk):
    url, proc = served
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        request = pool.submit(_transcribe, url, jfk)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        replica, text = request.result(timeout=120)
    assert JFK_PHRASE in normalized(text)
    proc.wait(90)
    assert proc.returncode == 0
