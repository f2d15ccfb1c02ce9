import os
from pathlib import Path

import pytest

# Tests never reach the network; any download attempt must fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JFK = Path(os.environ.get("LEANSPEECH_TEST_JFK", SHARED / "jfk.flac"))


@pytest.fixture(autouse=True)
def _settings_from_the_test_only(monkeypatch):
    """``Settings`` reads the environment: a test builds them from what it passes, never from
    ``LEANSPEECH_*`` (or a legacy name) that the shell or an earlier test left in the process.
    Tests run in any order (``pytest -p randomly``)."""
    from leanspeech.config import LEGACY_ENV

    for name in list(os.environ):
        if (name.startswith("LEANSPEECH_") and name != "LEANSPEECH_TEST_JFK") or name in LEGACY_ENV \
                or name == "USE_INT8_QUANTIZATION":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def jfk() -> Path:
    if not JFK.exists():
        pytest.skip(f"{JFK} not found (set LEANSPEECH_TEST_JFK)")
    return JFK


@pytest.fixture(scope="session")
def long_audio():
    """~90 s of Piper speech with pauses, and its reference text (made once, cached)."""
    from leanspeech.measure.corpus import long_form

    return long_form(1.5)



@pytest.fixture(scope="module")
def make_server(tmp_path_factory):
    """Start real ``leanspeech serve`` processes on loopback (stopped with the module)."""
    from helpers import Server

    servers = []

    def make(env=None, args=(), wait_ready=True):
        s = Server(env or {}, args, wait_ready, tmp_path_factory.mktemp("srv"))
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
