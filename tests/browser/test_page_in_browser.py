"""The page at ``/`` in a real headless Chromium, against a real server and the bundled
models: upload, live captions from the (fake) microphone, speech that plays and transcribes
back, the memory dashboard and its clean-up, errors shown, the API key, keyboard use and
phone width. Assertions are on key phrases and WER, never on exact words."""

import base64
import re

import httpx
import pytest
from shots import screenshot

from helpers import normalized, wer

pytestmark = [pytest.mark.model, pytest.mark.live, pytest.mark.browser]

JFK_PHRASE = "ask not what your country can do for you"
SPOKEN = "The weather is lovely today. We walked to the market and bought fresh bread. Then we went home."


@pytest.fixture(scope="module")
def server(make_server):
    return make_server({})


def has(text: str, phrase: str) -> bool:
    return normalized(phrase) in normalized(text)


def wait_ready(page):
    page.wait_for_function("document.getElementById('stt-model').options.length > 0", timeout=30000)


def test_upload_shows_the_transcript_segments_timing_and_downloads(server, open_page, jfk):
    page = open_page(server)
    wait_ready(page)
    page.set_input_files("#file", str(jfk))
    page.click("#transcribe-go")
    page.wait_for_selector("#segments-wrap:not([hidden])", timeout=90000)
    assert has(page.inner_text("#transcript"), JFK_PHRASE), page.inner_text("#transcript")
    timing = page.inner_text("#transcribe-timing")
    assert re.search(r"audio 11\.\d+ s", timing) and "real-time factor" in timing and "why:" in timing, timing
    assert re.search(r"at (int8|float32|float16|bfloat16|int8_float32)\b", timing), timing
    assert page.locator("#segments tbody tr").count() >= 1
    screenshot(page, "transcribe")
    with page.expect_download() as download:
        page.click("#downloads [data-format=srt]")
    srt = open(download.value.path()).read()
    assert srt.startswith("1\n00:00:00") and " --> " in srt and has(srt, JFK_PHRASE)
    with page.expect_download() as download:
        page.click("#downloads [data-format=vtt]")
    assert open(download.value.path()).read().startswith("WEBVTT")


def test_a_corrupt_upload_shows_the_servers_message_and_the_page_stays_usable(server, open_page, tmp_path, jfk):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    expected = httpx.post(server.url + "/v1/audio/transcriptions",
                          files={"file": ("broken.wav", broken.read_bytes(), "audio/wav")}).json()["error"]["message"]
    page = open_page(server)
    wait_ready(page)
    page.set_input_files("#file", str(broken))
    page.click("#transcribe-go")
    page.wait_for_selector("#transcribe-error:not([hidden])", timeout=30000)
    assert page.inner_text("#transcribe-error") == expected
    screenshot(page, "transcribe-error")
    page.set_input_files("#file", str(jfk))
    page.click("#transcribe-go")
    page.wait_for_selector("#segments-wrap:not([hidden])", timeout=90000)
    assert page.locator("#transcribe-error").is_hidden()
    assert has(page.inner_text("#transcript"), JFK_PHRASE)


def test_live_captions_from_the_microphone(server, open_page):
    page = open_page(server, "#live")
    page.wait_for_function("document.getElementById('live-model').options.length > 0", timeout=30000)
    page.click("#live-start")
    page.wait_for_function(
        "[...document.querySelectorAll('#captions li.done')].some(li => /fellow\\s+americans/i.test(li.textContent))",
        timeout=90000)
    done = page.locator("#captions li.done")
    assert done.count() >= 1
    assert re.search(r"\+\d+\.\d\d s", done.first.inner_text()), done.first.inner_text()  # its latency
    screenshot(page, "live")
    page.click("#live-stop")
    page.wait_for_function("document.getElementById('live-state').textContent === 'stopped'", timeout=60000)
    assert page.locator("#live-error").is_hidden(), page.inner_text("#live-error")
    assert page.locator("#live-start").is_enabled()


def test_speech_plays_as_it_streams_and_transcribes_back(server, open_page):
    page = open_page(server, "#speak")
    page.wait_for_function("document.getElementById('speak-voice').options.length > 0", timeout=30000)
    page.fill("#speak-text", SPOKEN)
    page.click("#speak-go")
    page.wait_for_selector("#speak-audio:not([hidden])", timeout=90000)
    page.wait_for_function("document.getElementById('speak-audio').duration > 0", timeout=20000)
    timing = page.locator("#speak-timing")
    first, total = float(timing.get_attribute("data-first-sound")), float(timing.get_attribute("data-total"))
    assert first < total, (first, total)  # the first sentence played before the last was made
    page.evaluate("document.getElementById('speak-audio').play()")
    page.wait_for_function("document.getElementById('speak-audio').currentTime > 0.2", timeout=10000)
    screenshot(page, "speak")
    wav = base64.b64decode(page.evaluate("""async () => {
        const blob = await (await fetch(document.getElementById('speak-audio').src)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let s = ''; for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }"""))
    assert wav[:4] == b"RIFF"
    r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("speech.wav", wav, "audio/wav")},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert wer(SPOKEN, r.json()["text"]) < 0.2, r.json()["text"]


def test_memory_lists_the_model_and_the_clean_up_frees_it(server, open_page, jfk):
    r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": jfk.open("rb")}, timeout=60)
    assert r.status_code == 200
    page = open_page(server, "#memory")
    page.wait_for_function("[...document.querySelectorAll('#models tbody tr')].some(tr => /tiny\\.en/.test("
                           "tr.textContent))", timeout=20000)
    row = page.locator("#models tbody tr", has_text="tiny.en")
    assert re.search(r"\d+\.\d MiB", row.inner_text()), row.inner_text()
    page.wait_for_function("document.querySelector('#memory-figures dd') !== null")
    assert "MiB" in page.inner_text("#memory-figures")
    page.wait_for_timeout(2500)  # a second reading on the chart
    screenshot(page, "memory")
    page.click("#cleanup")
    page.wait_for_function("/freed/.test(document.getElementById('cleanup-result').textContent)", timeout=30000)
    result = page.inner_text("#cleanup-result")
    assert re.search(r"freed -?\d+(\.\d)? (B|KiB|MiB)", result) and "stt:tiny.en" in result, result
    assert page.locator("#models tbody tr", has_text="tiny.en").count() == 0
    assert "stt:tiny.en" in page.inner_text("#unloads")


def test_fits_shows_the_measured_plan_and_runs_a_quick_one(server, open_page):
    page = open_page(server, "#fits")
    page.wait_for_selector("#plan-measured table tbody tr", timeout=30000)
    page.wait_for_function("[...document.querySelectorAll('#plan-charts img')].length > 0 && "
                           "[...document.querySelectorAll('#plan-charts img')].every(i => i.complete && "
                           "i.naturalWidth > 0)", timeout=20000)
    page.select_option("#plan-model", "tiny.en")
    page.select_option("#plan-precision", "int8")
    page.click("#plan-go")
    page.wait_for_selector("#plan-result table tbody tr", timeout=240000)
    row = page.inner_text("#plan-result table tbody tr")
    assert "tiny.en" in row and "int8" in row and "MiB" in row, row
    assert "Recommended" in page.inner_text("#plan-result")
    screenshot(page, "fits")


def test_keyboard_labels_and_phone_width(server, open_page):
    page = open_page(server, width=390)
    wait_ready(page)
    page.focus("#tab-transcribe")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-live", "aria-selected") == "true" and page.locator("#live").is_visible()
    page.keyboard.press("End")
    assert page.locator("#fits").is_visible()
    page.keyboard.press("Home")
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('button, select, input, textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.id || e.outerHTML.slice(0, 60))""")
    assert unlabeled == []
    for panel in ("transcribe", "live", "speak", "memory", "fits"):
        page.click(f"#tab-{panel}")
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, f"{panel} is {width} px wide at phone width"
    page.click("#tab-transcribe")
    screenshot(page, "phone")


def test_api_key_is_asked_once_and_sent_on_rest_and_websocket(make_server, open_page):
    keyed = make_server({"LEANSPEECH_SERVER__API_KEY": "s3cret key 0123456"})
    page = open_page(keyed)
    page.wait_for_selector("#key-dialog[open]", timeout=20000)
    page.fill("#key-input", "wrong")
    page.click("#key-form button[value=ok]")
    page.wait_for_selector("#key-dialog[open]", timeout=20000)
    assert "refused" in page.inner_text("#key-error")
    page.fill("#key-input", "s3cret key 0123456")
    page.click("#key-form button[value=ok]")
    wait_ready(page)
    assert "leanspeech" in page.inner_text("#server-line")
    assert page.evaluate("sessionStorage.getItem('leanspeech.apiKey')") == "s3cret key 0123456"
    page.click("#tab-live")
    page.click("#live-start")
    page.wait_for_function("document.getElementById('live-state').textContent === 'listening'", timeout=30000)
    page.click("#live-stop")
    page.wait_for_function("document.getElementById('live-state').textContent === 'stopped'", timeout=60000)
    assert page.locator("#live-error").is_hidden(), page.inner_text("#live-error")
    assert "s3cret-0123456789" not in page.url


def test_speakers_are_shown_in_the_transcript(server, open_page, conversation):
    page = open_page(server)
    wait_ready(page)
    page.set_input_files("#file", str(conversation.path))
    page.select_option("#stt-speakers", "auto")
    page.click("#transcribe-go")
    page.wait_for_selector("#segments-wrap:not([hidden])", timeout=120000)
    assert page.is_visible("#speaker-head")
    labels = page.locator("#segments tbody td.speaker").all_inner_texts()
    assert len(labels) >= 6 and len(set(labels)) >= 3, labels
    lines = page.inner_text("#transcript").splitlines()
    assert sum(line.startswith("[") for line in lines) >= 6, lines
    with page.expect_download() as download:
        page.click("#downloads [data-format=srt]")
    assert "[A]" in open(download.value.path()).read()
