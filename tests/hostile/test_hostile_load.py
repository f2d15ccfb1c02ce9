"""Admission control: an HTTP burst is refused past its bound (429 with Retry-After) while
a live session keeps its text coming; two model loads at once stay within the budget."""

import threading
import time

import httpx
import pytest

from helpers import heard_jfk, live_session, no_tracebacks, normalized

pytestmark = [pytest.mark.hostile, pytest.mark.model, pytest.mark.timeout(600)]


def test_a_burst_of_32_requests_while_a_live_session_streams(make_server, jfk, jfk_audio):
    import numpy as np

    server = make_server({"LEANSPEECH_SERVER__MAX_TRANSCRIPTIONS": "4"})
    data = jfk.read_bytes()
    answers: list[httpx.Response] = []
    refused: list[httpx.Response] = []
    burst_at: list[float] = []

    def one():  # as a client that honours Retry-After (the openai SDK does)
        for _ in range(60):
            r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("jfk.flac", data)},
                           data={"model": "whisper-1"}, timeout=300)
            if r.status_code != 429:
                answers.append(r)
                return
            refused.append(r)
            time.sleep(min(float(r.headers["retry-after"]), 2.0))

    def burst():
        time.sleep(4)  # the live session has begun
        burst_at.append(time.monotonic())
        threads = [threading.Thread(target=one) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        burst_at.append(time.monotonic())

    stamps: list[float] = []
    attacker = threading.Thread(target=burst)
    attacker.start()
    audio = np.concatenate([jfk_audio, np.zeros(16000, np.float32)] * 2)  # 24 s at real-time pace
    run = live_session(server.ws_url, audio, frame_s=0.1, speed=1.0, on_message=lambda m: stamps.append(
        time.monotonic()) if "segments" in m else None)
    attacker.join()

    assert [r.status_code for r in answers] == [200] * 32  # every request served in the end
    assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert refused[0].json()["error"]["code"] == "too_many_requests"
    assert all(heard_jfk(r.json()["text"]) for r in answers)
    # the live session went on receiving text during the burst, and heard it all
    start, end = burst_at
    assert sum(1 for t in stamps if start <= t <= end) >= 3, (start, end, stamps)
    assert run.close_code == 1000
    assert normalized(run.completed_text()).count("your country") >= 3, run.completed_text()  # 4 in the audio
    no_tracebacks(server)


def test_two_models_loading_at_once_stay_within_the_budget():
    """Two different models asked for at the same moment, a budget that holds one: the room
    check counts the load in progress, so one load waits its turn or is refused (503)."""
    from leanspeech.errors import MemoryBudgetError
    from leanspeech.runtime.manager import LoaderSpec, ModelManager

    started, release = threading.Barrier(2, timeout=10), threading.Event()
    peak = [0]

    class Model:
        def close(self):
            pass

    def load(name):
        peak[0] = max(peak[0], manager.used())
        release.wait(5)
        return Model()

    manager = ModelManager({"stt": LoaderSpec(load=load, estimate=lambda n: 600, ttl=-1)}, budget=1000)
    outcomes: dict[str, object] = {}

    def ask(name):
        try:
            started.wait()
            with manager.acquire("stt", name):
                outcomes[name] = "loaded"
        except MemoryBudgetError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("tiny.en", "base")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    release.set()
    for t in threads:
        t.join()
    assert sorted(type(v).__name__ if not isinstance(v, str) else v for v in outcomes.values()) == [
        "MemoryBudgetError", "loaded"], outcomes
    refused = next(v for v in outcomes.values() if isinstance(v, MemoryBudgetError))
    assert "loading:" in str(refused)  # the message names the load that holds the room
    assert peak[0] <= 1000 and manager.used() <= 1000
