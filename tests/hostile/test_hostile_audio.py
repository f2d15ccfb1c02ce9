"""Audio bounded by its duration, not its bytes: two hours of stereo silence compress to a
few hundred KB of FLAC, and decoded whole they took the server from 271 MiB to 2.4 GiB."""

import time

import httpx
import pytest

from helpers import PeakRSS, no_tracebacks

pytestmark = [pytest.mark.hostile, pytest.mark.model, pytest.mark.timeout(600)]

#: Most the server's RSS may grow while it transcribes two hours of split stereo: about what
#: a mono file of any length costs (one block of samples, VAD, a decode), with margin.
SPLIT_RSS_BOUND_MIB = 250


@pytest.fixture(scope="module")
def two_hours():
    from leanspeech.measure.corpus import encoded_silence

    return encoded_silence(7200)  # stereo FLAC


@pytest.fixture(scope="module")
def limited(make_server):
    return make_server({"LEANSPEECH_SERVER__MAX_AUDIO_SECONDS": "3600"})


def post(server, data: bytes, **fields):
    return httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("s.flac", data, "audio/flac")},
                      data={"model": "whisper-1", **fields}, timeout=600)


def test_two_hours_of_split_stereo_silence_stay_in_bounded_memory(make_server, two_hours):
    server = make_server()  # the default limit (3 hours) lets it through
    with PeakRSS(server.proc.pid) as rss:
        r = post(server, two_hours, channels="split", response_format="verbose_json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration"] == pytest.approx(7200, abs=1) and body["text"].strip() == ""
    print(f"split stereo, 2 h of silence: RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB")
    assert rss.grew_mib < SPLIT_RSS_BOUND_MIB, f"RSS {rss.before / 2**20:.0f} -> {rss.peak / 2**20:.0f} MiB"
    no_tracebacks(server)


@pytest.mark.parametrize("channels", ["split", "mono"])
def test_audio_over_the_duration_limit_is_refused_before_decoding(limited, two_hours, channels):
    start = time.monotonic()
    with PeakRSS(limited.proc.pid) as rss:
        r = post(limited, two_hours, channels=channels)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "audio_too_long" and error["param"] == "file"
    assert "7200 s" in error["message"] and "3600 s" in error["message"]
    assert rss.grew_mib < 50
    assert time.monotonic() - start < 30  # it was not decoded (two hours take minutes): a bound on the attack


def test_a_container_that_lies_about_its_duration_is_stopped_while_decoding(limited):
    # raw AAC (ADTS) says no duration: FFmpeg guesses one from the bitrate (under the limit here),
    # so the limit must hold while decoding
    from leanspeech.measure.corpus import encoded_silence

    aac = encoded_silence(3700, container="adts", codec="aac", channels=1)
    r = httpx.post(limited.url + "/v1/audio/transcriptions", files={"file": ("s.aac", aac, "audio/aac")},
                   data={"model": "whisper-1"}, timeout=600)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "audio_too_long" and "3600 s" in r.json()["error"]["message"]
