"""Every bad request gets its status and an OpenAI-shaped error, and harms no one else."""

import socket
import threading

import httpx
import pytest

from helpers import JFK_PHRASE, normalized

pytestmark = pytest.mark.model

URL = "/v1/audio/transcriptions"


def post(server, files=None, data=None, **kw):
    return httpx.post(server.url + URL, files=files, data=data, timeout=120, **kw)


def assert_error(r, status, *needles):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    for needle in needles:
        assert needle in err["message"], err


def jfk_files(jfk):
    return {"file": ("jfk.flac", jfk.read_bytes(), "audio/flac")}


def test_corrupt_audio(server):
    r = post(server, files={"file": ("x.mp3", b"\x00\x01garbage" * 500, "audio/mpeg")})
    assert_error(r, 400, "x.mp3", "not decodable")


def test_not_audio_content_type(server):
    r = post(server, files={"file": ("notes.txt", b"hello, I am text", "text/plain")})
    assert_error(r, 415, "not audio")


def test_empty_file(server):
    assert_error(post(server, files={"file": ("empty.wav", b"", "audio/wav")}), 400, "empty")


def test_missing_file_field(server):
    assert_error(post(server, data={"model": "whisper-1"}), 400, "file")


def test_oversized_upload_is_refused_without_reading_it(make_server, jfk):
    small = make_server({"LEANSPEECH_SERVER__MAX_UPLOAD_SIZE": "200KB"})
    r = post(small, files=jfk_files(jfk))  # jfk.flac is 1.1 MB
    assert_error(r, 413, "200")
    # a client that announces a huge body gets 413 before it sends it
    with socket.create_connection(("127.0.0.1", small.port)) as sock:
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        sock.settimeout(10)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")

    # a chunked body (no Content-Length) is cut off as it crosses the limit
    def chunks():
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        )
        for _ in range(40):
            yield b"x" * 10_000
        yield b"\r\n--b--\r\n"

    r = httpx.post(
        small.url + URL, content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}, timeout=30
    )
    assert r.status_code == 413
    assert httpx.get(small.url + "/health").status_code == 200


def test_unknown_model(server, jfk):
    assert_error(post(server, files=jfk_files(jfk), data={"model": "huge-v9"}), 404, "huge-v9", "tiny.en")


@pytest.mark.parametrize("name", ["../../etc", "/etc/passwd", "..", "a/b"])
def test_path_as_model_name_is_rejected(server, jfk, name):
    r = post(server, files=jfk_files(jfk), data={"model": name})
    assert r.status_code == 400 and "invalid model name" in r.json()["error"]["message"]


def test_unknown_response_format(server, jfk):
    assert_error(post(server, files=jfk_files(jfk), data={"response_format": "docx"}), 400, "docx", "verbose_json")


def test_unknown_granularity(server, jfk):
    r = post(
        server, files=jfk_files(jfk), data={"response_format": "verbose_json", "timestamp_granularities[]": "sentence"}
    )
    assert_error(r, 400, "sentence")


def test_bad_temperature(server, jfk):
    assert_error(post(server, files=jfk_files(jfk), data={"temperature": "7"}), 400, "temperature")


def test_client_vanishing_mid_upload_leaves_no_leak(server, jfk):
    import psutil

    pid = next(
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and str(server.port) in p.info["cmdline"]
    ).pid
    proc = psutil.Process(pid)
    body = jfk.read_bytes()
    head = (
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        + f"Content-Length: {len(body) + 200}\r\n\r\n".encode()
        + b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.flac"\r\n'
        b"Content-Type: audio/flac\r\n\r\n"
    )

    def vanish():
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head + body[: len(body) // 2])

    vanish()
    fds_before = proc.num_fds()
    threads = [threading.Thread(target=vanish) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import time

    time.sleep(1.0)
    assert proc.num_fds() <= fds_before + 2  # no sockets or spooled temp files left open
    r = post(server, files=jfk_files(jfk))
    assert r.status_code == 200 and JFK_PHRASE in normalized(r.json()["text"])


def test_bad_requests_do_not_harm_a_good_one(server, jfk):
    """A good request running while bad ones arrive still gets its text."""
    results = {}

    def good():
        results["good"] = post(server, files=jfk_files(jfk))

    t = threading.Thread(target=good)
    t.start()
    for _ in range(5):
        post(server, files={"file": ("x.wav", b"junk" * 100, "audio/wav")})
        post(server, files={"file": ("e.wav", b"", "audio/wav")})
    t.join()
    assert results["good"].status_code == 200 and JFK_PHRASE in normalized(results["good"].json()["text"])
