"""Shared test helpers (imported by name; conftest modules cannot be imported reliably)."""

JFK_PHRASE = "ask not what your country can do for you"


def normalized(text: str) -> str:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()(text)


def wer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.wer(normalized(ref), normalized(hyp))


# ---- a live `leanspeech serve` on loopback, for the server and TTS tests ----------------

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, args=(), wait_ready=True, tmp: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "HF_HUB_OFFLINE": "1",
                "LEANSPEECH_STT__CPU_THREADS": "2", **env}
        self.log = open(tmp / f"server-{self.port}.log", "w+") if tmp else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "leanspeech", "serve", "--port", str(self.port), *args],
                                     env=full, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait(ready=wait_ready)

    def wait(self, ready=True, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.logs()}")
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200 or (not ready and r.status_code in (200, 503)):
                    if r.status_code == 200 or "error" in r.json():
                        return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready: " + self.logs())

    def logs(self) -> str:
        if hasattr(self.log, "seek"):
            self.log.flush()
            self.log.seek(0)
            return self.log.read()[-3000:]
        return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if hasattr(self.log, "close"):
            self.log.close()
