"""The WhisperLive WebSocket protocol against a live `leanspeech serve` on loopback."""

import json
import re
import threading

import httpx
import numpy as np
import pytest

from helpers import heard_jfk, live_session, load_audio, pcm

pytestmark = [pytest.mark.model, pytest.mark.live, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def live(make_server):
    # no eviction of idle sessions: a full server says WAIT (tests/hostile tests eviction)
    return make_server({"LEANSPEECH_LIVE__IDLE_TIMEOUT": "3", "LEANSPEECH_LIVE__MAX_CLIENTS": "3",
                        "LEANSPEECH_LIVE__EVICT_IDLE_S": "0"})


@pytest.fixture(scope="module")
def jfk_pcm(jfk):
    return load_audio(jfk)


def check_transcript(run):
    assert run.error is None, run.error
    assert run.messages[0] == {"uid": "test-client", "message": "SERVER_READY", "backend": "leanspeech"}
    assert all(m.get("uid") == "test-client" for m in run.messages)
    assert heard_jfk(run.completed_text()), run.completed_text()
    for m in run.of("segments"):
        for seg in m["segments"]:
            assert set(seg) == {"start", "end", "text", "completed"}
            float(seg["start"]), float(seg["end"])  # strings holding numbers
            assert isinstance(seg["start"], str) and len(seg["start"].split(".")[1]) == 3
    # After END_OF_AUDIO: the final segments (all completed), then the server closes.
    last = run.messages[-1]
    assert "segments" in last and all(seg["completed"] for seg in last["segments"])
    assert len(run.messages) > run.sent_end_at
    assert run.close_code == 1000


@pytest.mark.parametrize("fmt", ["float32", "int16"])
def test_streams_jfk_in_100ms_frames(live, jfk_pcm, fmt):
    run = live_session(live.ws_url, jfk_pcm, options={"audio_format": fmt})
    check_transcript(run)
    # partial text arrived before the end (not one answer at the close)
    assert any(not seg["completed"] for m in run.of("segments") for seg in m["segments"])


def test_live_port_speaks_the_protocol_on_any_path(live, jfk_pcm):
    run = live_session(f"ws://127.0.0.1:{live.live_port}", jfk_pcm, speed=8)
    check_transcript(run)


def test_word_timestamps_and_language_message(live, jfk_pcm):
    run = live_session(live.ws_url, jfk_pcm, options={"word_timestamps": True, "language": None}, speed=8)
    assert run.of("language")[0]["language"] == "en" and "language_prob" in run.of("language")[0]
    words = [w for m in run.of("segments") for s in m["segments"] for w in s["words"]]
    assert words and all(isinstance(w["start"], str) and "probability" in w for w in words)


def test_silence_gives_no_text(live):
    rng = np.random.default_rng(7)
    silence = np.concatenate([np.zeros(16000 * 15, np.float32),
                              (rng.standard_normal(16000 * 15) * 0.003).astype(np.float32)])
    run = live_session(live.ws_url, silence, speed=20)
    assert run.error is None
    assert run.messages[0]["message"] == "SERVER_READY"
    assert not [s for m in run.of("segments") for s in m["segments"] if s["text"].strip()]
    assert run.close_code == 1000


def test_two_clients_at_once(live, jfk_pcm):
    runs = [None, None]

    def go(i):
        runs[i] = live_session(live.ws_url, jfk_pcm, speed=3)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for run in runs:
        check_transcript(run)


# ---- bad input: each gets its error, and a session running beside it is unharmed ----------

def _error(run):
    errors = [m for m in run.messages if m.get("status") == "ERROR"]
    assert errors, run.messages
    return errors[0]["message"]


BAD_FIRST_FRAMES = {
    "not json": ("hello there", "not JSON"),
    "json but not an object": ("[1, 2]", "JSON object"),
    "no uid": (json.dumps({"language": "en"}), "uid"),
    "wrong type": (json.dumps({"uid": "x", "send_last_n_segments": "many"}), "send_last_n_segments"),
    "unknown audio format": (json.dumps({"uid": "x", "audio_format": "mp3"}), "audio_format"),
    "unknown task": (json.dumps({"uid": "x", "task": "summarize"}), "task"),
    "model is a path": (json.dumps({"uid": "x", "model": "../../etc"}), "etc"),
    "binary first frame": (b"\x00\x01", "JSON text frame"),
}


@pytest.mark.parametrize("case", list(BAD_FIRST_FRAMES))
def test_bad_first_frame(live, case):
    frame, expected = BAD_FIRST_FRAMES[case]
    run = live_session(live.ws_url, first_frame=frame, end=False)
    assert expected in _error(run)
    assert run.close_code in (1003, 1008) and run.close_reason


def _beside(live, jfk_pcm, bad):
    """Run ``bad()`` while a good session streams; the good one must still be right."""
    good = {}
    t = threading.Thread(target=lambda: good.setdefault("run", live_session(live.ws_url, jfk_pcm, speed=3)))
    t.start()
    result = bad()
    t.join()
    check_transcript(good["run"])
    return result


def test_odd_length_frame(live, jfk_pcm):
    run = _beside(live, jfk_pcm, lambda: live_session(live.ws_url, frames=[pcm(jfk_pcm[:1600], "float32"), b"\x00" * 7],
                                                      uid="bad", end=False))
    assert "multiple of 4 bytes" in _error(run)
    assert run.close_code == 1003


def test_odd_length_int16_frame(live):
    run = live_session(live.ws_url, options={"audio_format": "int16"}, frames=[b"\x00" * 3201], end=False)
    assert "multiple of 2 bytes" in _error(run)


def test_nan_and_inf_samples_are_silenced_with_a_warning(live, jfk_pcm):
    audio = jfk_pcm.copy()
    audio[1000:1100] = np.nan
    audio[5000:5010] = np.inf
    run = live_session(live.ws_url, audio, speed=8)
    warnings = [m for m in run.messages if m.get("status") == "WARNING"]
    assert warnings and "NaN" in warnings[0]["message"]
    check_transcript(run)


def test_client_vanishing_mid_stream_frees_its_slot(live, jfk_pcm):
    from websockets.sync.client import connect

    def vanish():
        ws = connect(live.ws_url, open_timeout=30)
        ws.send(json.dumps({"uid": "gone", "language": "en"}))
        json.loads(ws.recv(timeout=60))
        for i in range(0, 16000 * 4, 1600):
            ws.send(pcm(jfk_pcm[i : i + 1600], "float32"))
        ws.socket.close()  # no close frame: the client just disappears

    _beside(live, jfk_pcm, vanish)
    # the slot is given back: the gauge returns to zero
    for _ in range(100):
        metrics = httpx.get(live.url + "/metrics").text
        if "leanspeech_live_sessions 0.0" in metrics:
            break
        import time

        time.sleep(0.1)
    assert "leanspeech_live_sessions 0.0" in metrics


def test_idle_session_is_closed(live, jfk_pcm):
    run = live_session(live.ws_url, frames=[pcm(jfk_pcm[:1600], "float32")], end=False, timeout=30)
    assert "no audio for 3 s" in _error(run)
    assert run.close_code == 1000


def test_unknown_options_are_accepted(live, jfk_pcm):
    run = live_session(live.ws_url, jfk_pcm[: 16000 * 3], options={"enable_diarization": True, "future_option": 1},
                       speed=8)
    assert run.messages[0]["message"] == "SERVER_READY"
    assert run.close_code == 1000


# ---- slots, connection time, API key -------------------------------------------------------

def test_full_server_says_wait(make_server, jfk_pcm):
    srv = make_server({"LEANSPEECH_LIVE__MAX_CLIENTS": "1", "LEANSPEECH_LIVE__MAX_CONNECTION_TIME": "4",
                       "LEANSPEECH_LIVE__EVICT_IDLE_S": "0"})  # the first session is idle: no eviction
    first = {}
    t = threading.Thread(target=lambda: first.setdefault("run", live_session(srv.ws_url, jfk_pcm, speed=1)))
    t.start()
    import time

    time.sleep(1.5)
    second = live_session(srv.ws_url, jfk_pcm, uid="second", end=False)
    t.join()
    wait = second.messages[0]
    assert wait["uid"] == "second" and wait["status"] == "WAIT" and 0 < wait["message"] <= 4 / 60
    assert second.close_code == 1013
    # the first client hit the 4 s maximum connection time
    assert first["run"].messages[-1] == {"uid": "test-client", "message": "DISCONNECT"}


def test_api_key_header_or_token(make_server, jfk_pcm):
    from websockets.exceptions import InvalidStatus

    srv = make_server({"LEANSPEECH_SERVER__API_KEY": "open-sesame-0123456"})
    with pytest.raises(InvalidStatus):
        live_session(srv.ws_url, jfk_pcm[:16000])
    with pytest.raises(InvalidStatus):
        live_session(srv.ws_url + "?token=wrong", jfk_pcm[:16000])
    ok = live_session(srv.ws_url + "?token=open-sesame-0123456", jfk_pcm[:16000], speed=8)
    assert ok.messages[0]["message"] == "SERVER_READY"
    ok = live_session(f"ws://127.0.0.1:{srv.live_port}", jfk_pcm[:16000], speed=8,
                      headers={"Authorization": "Bearer open-sesame-0123456"})
    assert ok.messages[0]["message"] == "SERVER_READY"


# ---- leanspeech listen ----------------------------------------------------------------------

def _listen(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "leanspeech", "listen", *args], capture_output=True, text=True,
                          timeout=180)


@pytest.mark.parametrize("fast", [False, True], ids=["real-time", "fast"])
def test_listen_cli_prints_the_transcript(live, jfk, fast):
    # --fast: the clip reaches the server in two pieces (about 0.7 s, then the rest), and the
    # first phrase once lost its first words ("all my fellow america")
    out = _listen(str(jfk), "--url", f"ws://127.0.0.1:{live.live_port}", *(["--fast"] if fast else []))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines and all(re.fullmatch(r"\[ *\d+\.\d\d -> +\d+\.\d\d\] .+", line) for line in lines), out.stdout
    # each phrase closes at its pause: "ask not" alone is often heard "asked not" (tiny.en)
    assert heard_jfk(" ".join(line.split("] ", 1)[1] for line in lines)), out.stdout


def test_listen_cli_errors(jfk):
    from helpers import free_port

    out = _listen(str(jfk), "--url", f"ws://127.0.0.1:{free_port()}")
    assert out.returncode == 1 and "cannot connect" in out.stderr
    out = _listen()
    assert out.returncode == 2 and "FILE or --mic" in out.stderr
