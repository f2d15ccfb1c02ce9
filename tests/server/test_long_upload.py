"""A long upload decoded from its spooled file block by block: streamed text arrives while
the rest of the file is still to be decoded, and the whole answer is on the file's timeline."""

import pytest

from helpers import wer

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def client(make_server):
    from openai import OpenAI

    server = make_server(env={"LEANSPEECH_STT__BLOCK_SECONDS": "60"})
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def three_minutes():
    from leanspeech.measure.corpus import long_form

    return long_form(3.0, seed=7)


def test_streamed_text_arrives_block_by_block(client, three_minutes):
    path, reference = three_minutes
    with open(path, "rb") as fh:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True))
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    progress = [e.model_extra["progress"] for e in deltas]
    assert len(deltas) >= 5 and progress == sorted(progress) and progress[0] < 0.5 and progress[-1] > 0.9
    assert events[-1].type == "transcript.text.done"
    assert wer(reference, events[-1].text) < 0.15
    assert wer(events[-1].text, "".join(e.delta for e in deltas)) < 0.02


def test_verbose_segments_on_the_files_timeline(client, three_minutes):
    path, reference = three_minutes
    with open(path, "rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="verbose_json")
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= result.duration + 0.1
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    assert result.duration == pytest.approx(180, abs=15) and wer(reference, result.text) < 0.15
