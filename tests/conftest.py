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


@pytest.fixture(scope="module")
def server(make_server):
    """The default server: bundled tiny.en, defaults (a test module may define its own)."""
    return make_server()


@pytest.fixture(scope="module")
def client(server):
    """The openai SDK against the module's server."""
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


# ---- conversations with an exact speaker reference (diarization) ----

#: (speaker, text) turns: four voices (JFK's recording, Piper, two espeak-ng voices) at
#: different loudness, pauses of 0.4-1.5 s, and some back-and-forth of short turns
GAINS = {"jfk": 1.0, "piper": 0.7, "espeak-f": 0.4, "espeak-m": 0.25}


def conversation_plan():
    from leanspeech.measure.conversation import sentences

    s = sentences(12, seed=5)
    return [("jfk", "0"), ("piper", s[0]), ("espeak-f", s[1]), ("espeak-m", s[2]),
            ("jfk", "1"), ("piper", s[3] + " " + s[4]), ("espeak-f", "Sure, go ahead."), ("espeak-m", s[5]),
            ("jfk", "2"), ("espeak-f", s[6]), ("piper", "I see."), ("espeak-m", s[7] + " " + s[8]),
            ("jfk", "3"), ("piper", s[9]), ("espeak-f", s[10]), ("espeak-m", s[11])]


@pytest.fixture(scope="session")
def conversation(jfk):
    from leanspeech.measure.conversation import build

    return build(conversation_plan(), name="test4", jfk=jfk, gains=GAINS)


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """A 3-6 s clip of Piper and of the first espeak voice, saying what the conversation does not."""
    from leanspeech.audio import write_wav
    from leanspeech.measure.conversation import speak, trim

    out = {}
    for speaker, text in (("piper", "The lighthouse keeper counts the ships at night."),
                          ("espeak-f", "Please remember to water the plants on Friday.")):
        path = tmp_path_factory.mktemp("refs") / f"{speaker}.wav"
        write_wav(path, trim(speak(speaker, text)) * GAINS[speaker])
        out[speaker] = path
    return out
