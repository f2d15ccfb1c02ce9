"""A real Chromium (Debian's ``chromium``, installed by .ci/run with apt) driven headless by
Playwright, against a real ``leanspeech serve`` with the bundled models. The fake microphone
plays JFK (Chromium's ``--use-file-for-fake-audio-capture``). Screenshots of each panel go
to ``build/screenshots/`` (``shots.py``; copies are committed in ``docs/``).

Without Chromium the module is skipped, except under CI (``CI=true``), where that fails."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]


def chromium() -> str | None:
    for name in (os.environ.get("LEANSPEECH_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="session")
def browser_path():
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it with apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is missing: install the test extras (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def fake_mic(tmp_path_factory, jfk) -> Path:
    """JFK as a 16 kHz 16-bit WAV (what Chromium's fake capture reads), with half a second of
    silence before and 1.5 s after, so that the pause ends the segment before the loop."""
    from leanspeech.audio import decode_audio, write_wav

    audio = decode_audio(jfk)
    path = tmp_path_factory.mktemp("mic") / "jfk16.wav"
    write_wav(path, np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(24000, np.float32)]))
    return path


@pytest.fixture(scope="module")
def browser(browser_path, fake_mic):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser_path,
                              args=[*FLAGS, f"--use-file-for-fake-audio-capture={fake_mic}"])
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """``open_page(server, fragment="", width=1100)``: a fresh tab on the page; every
    uncaught script error in it fails the test."""
    pages = []

    def make(server, fragment: str = "", width: int = 1100):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(f"{server.url}/{fragment}")
        pages.append(page)
        return page

    yield make
    for page in pages:
        errors = page.errors
        page.close()
        assert not errors, f"script errors on the page: {errors}"
