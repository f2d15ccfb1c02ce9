import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, args=(), wait_ready=True, tmp: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "HF_HUB_OFFLINE": "1", "LEANSPEECH_SERVER__LIVE_PORT": "0",
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


@pytest.fixture(scope="module")
def make_server(tmp_path_factory):
    servers = []

    def make(env=None, args=(), wait_ready=True):
        s = Server(env or {}, args, wait_ready, tmp_path_factory.mktemp("srv"))
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(make_server):
    """The default server: bundled tiny.en, defaults."""
    return make_server()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
