"""The official openai SDK against a live `leanspeech serve`."""

import re

import pytest

from helpers import JFK_PHRASE, normalized

pytestmark = pytest.mark.model


def test_json(client, jfk):
    with open(jfk, "rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert JFK_PHRASE in normalized(result.text)


def test_catalog_name_and_language(client, jfk):
    with open(jfk, "rb") as fh:
        result = client.audio.transcriptions.create(model="tiny.en", file=fh, language="en", temperature=0.0,
                                                    prompt="Kennedy inaugural address")
    assert JFK_PHRASE in normalized(result.text)


def test_text(client, jfk):
    with open(jfk, "rb") as fh:
        text = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="text")
    assert isinstance(text, str) and JFK_PHRASE in normalized(text)


def test_srt_is_valid(client, jfk):
    with open(jfk, "rb") as fh:
        srt = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="srt")
    blocks = srt.strip().split("\n\n")
    assert blocks
    for i, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(i)
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    assert JFK_PHRASE in normalized(srt)


def test_vtt_is_valid(client, jfk):
    with open(jfk, "rb") as fh:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    cues = [c for c in vtt.split("\n\n")[1:] if c.strip()]
    assert cues and all(re.match(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n", c.strip() + "\n") for c in cues)


def test_verbose_json_with_words_and_segments(client, jfk):
    with open(jfk, "rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="verbose_json",
                                                    timestamp_granularities=["word", "segment"])
    assert result.duration == pytest.approx(11.0, abs=0.1) and result.language == "en"
    assert result.segments and result.segments[0].start >= 0 and result.segments[-1].end <= 11.1
    assert result.segments[0].tokens
    words = result.words
    assert len(words) > 15 and [w.start for w in words] == sorted(w.start for w in words)
    assert "country" in {w.word.strip(",.").lower() for w in words}


def test_streaming_events(client, jfk):
    with open(jfk, "rb") as fh:
        stream = client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True)
        events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "transcript.text.delta" and types[-1] == "transcript.text.done"
    assert JFK_PHRASE in normalized("".join(e.delta for e in events if e.type == "transcript.text.delta"))
    assert JFK_PHRASE in normalized(events[-1].text)


def test_translation(client, jfk):
    from openai import BadRequestError

    with open(jfk, "rb") as fh:  # English into English, on the multilingual model
        result = client.audio.translations.create(model="base", file=fh)
    assert JFK_PHRASE in normalized(result.text)
    with open(jfk, "rb") as fh, pytest.raises(BadRequestError, match="English-only"):
        client.audio.translations.create(model="tiny.en", file=fh)  # tiny.en cannot translate
    # OpenAI's whisper-1 translates: with an English-only default, it runs on base (on disk)
    with open(jfk, "rb") as fh:
        result = client.audio.translations.create(model="whisper-1", file=fh, response_format="verbose_json")
    assert JFK_PHRASE in normalized(result.text) and result.model_extra["leanspeech"]["model"] == "base"
    with open(jfk, "rb") as fh:  # and for a language other than English
        result = client.audio.transcriptions.create(model="whisper-1", file=fh, language="de",
                                                    response_format="verbose_json")
    assert result.model_extra["leanspeech"]["model"] == "base"
    with open(jfk, "rb") as fh:  # English stays on the default
        result = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="verbose_json")
    assert result.model_extra["leanspeech"]["model"] == "tiny.en"


def test_models(client):
    models = {m.id: m for m in client.models.list()}
    assert {"tiny.en", "large-v3-turbo", "base"} <= set(models)
    assert models["tiny.en"].model_extra["present"] is True
    assert models["large-v3-turbo"].model_extra["present"] is False
    assert client.models.retrieve("tiny.en").id == "tiny.en"


def test_sdk_errors_are_typed(client, jfk):
    import openai

    with open(jfk, "rb") as fh, pytest.raises(openai.NotFoundError) as err:
        client.audio.transcriptions.create(model="huge-v9", file=fh)
    assert "huge-v9" in err.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("huge-v9")
