"""Speakers through the server: the openai SDK (diarized_json, streamed segment events, known
speakers, diarize=true on verbose_json), subtitles, /v1/audio/diarization (JSON and RTTM),
the models' listing and memory, and the bad inputs each gets a clear 400 for."""

import base64

import httpx
import pytest

pytestmark = pytest.mark.model


def _data_url(path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_diarized_json_through_the_sdk(client, conversation):
    with open(conversation.path, "rb") as fh:
        result = client.audio.transcriptions.create(model="gpt-4o-transcribe-diarize", file=fh,
                                                    response_format="diarized_json", chunking_strategy="auto")
    assert result.duration == pytest.approx(conversation.duration, abs=0.1)
    assert len({s.speaker for s in result.segments}) >= 3
    assert all(s.type == "transcript.text.segment" and s.end >= s.start for s in result.segments)
    assert "fellow americans" in result.text.lower()


def test_streamed_segments(client, conversation):
    with open(conversation.path, "rb") as fh:
        events = list(client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=fh, response_format="diarized_json", stream=True,
            chunking_strategy={"type": "server_vad", "threshold": 0.5}))
    kinds = [e.type for e in events]
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds
    assert len(segments) >= 8 and len({e.speaker for e in segments}) >= 3


def test_known_speakers_name_their_segments(client, conversation, references):
    with open(conversation.path, "rb") as fh:
        result = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=fh, response_format="diarized_json",
            known_speaker_names=["pat", "fran"],
            known_speaker_references=[_data_url(references["piper"]), _data_url(references["espeak-f"])])
    speakers = {s.speaker for s in result.segments}
    assert "pat" in speakers, speakers


def test_verbose_json_with_diarize_on_any_model(client, conversation):
    with open(conversation.path, "rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="verbose_json",
                                                    timestamp_granularities=["word", "segment"],
                                                    extra_body={"diarize": "true", "max_speakers": "4"})
    segments = result.model_extra.get("segments") or [s.model_dump() for s in result.segments]
    labels = {s["speaker"] for s in segments}
    assert 3 <= len(labels) <= 4
    assert all("speaker" in w for w in [w.model_dump() for w in result.words])


def test_subtitles_label_speakers(client, conversation):
    with open(conversation.path, "rb") as fh:
        srt = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="srt",
                                                 extra_body={"diarize": "true"})
    assert srt.count("[A]") >= 2 and "[B]" in srt


def test_diarization_route_json_and_rttm(server, conversation):
    from leanspeech.diarize.diarizer import Turn
    from leanspeech.measure.der import der

    body = conversation.path.read_bytes()
    r = httpx.post(server.url + "/v1/audio/diarization", files={"file": ("talk.wav", body)},
                   data={"model": "pyannote/speaker-diarization-3.1"}, timeout=120)
    assert r.status_code == 200, r.text
    data = r.json()
    turns = [Turn(s["start"], s["end"], s["speaker"]) for s in data["segments"]]
    assert der(conversation.turns, turns).der < 0.15
    r = httpx.post(server.url + "/v1/audio/diarization", files={"file": ("talk.wav", body)},
                   data={"response_format": "rttm", "num_speakers": "2"}, timeout=120)
    lines = r.text.strip().splitlines()
    assert r.status_code == 200 and lines and all(line.startswith("SPEAKER talk 1 ") for line in lines)
    assert len({line.split()[7] for line in lines}) == 2


def test_the_speaker_model_is_listed_and_counted(server, client, conversation):
    models = {m.id: m for m in client.models.list()}
    assert models["campplus"].model_extra["task"] == "speaker-embedding"
    assert models["campplus"].model_extra["present"] is True
    r = _post(server, "/v1/audio/diarization", file=conversation.path.read_bytes())
    assert r.status_code == 200, r.text
    memory = httpx.get(server.url + "/memory").json()
    entry = next(m for m in memory["models"] if m["kind"] == "diarize")
    assert entry["name"] == "campplus" and entry["bytes"] > 28 * 1024**2
    assert memory["budget"]["used"] >= entry["bytes"]


def _post(server, path="/v1/audio/transcriptions", file=b"", **data):
    return httpx.post(server.url + path, files={"file": ("a.wav", file)}, data=data, timeout=60)


@pytest.mark.parametrize("fields, param", [
    ({"response_format": "diarized_json"}, "response_format"),  # whisper-1 without diarize
    ({"model": "gpt-4o-transcribe-diarize", "prompt": "names"}, "prompt"),
    ({"diarize": "true", "min_speakers": "5", "max_speakers": "2"}, "min_speakers"),
    ({"diarize": "true", "num_speakers": "0"}, "num_speakers"),
    ({"diarize": "true", "channels": "split"}, "channels"),
    ({"model": "gpt-4o-transcribe-diarize", "chunking_strategy": "fast"}, "chunking_strategy"),
    ({"num_speakers": "2"}, "model"),  # a speaker field on a request that does not diarize
    ({"model": "gpt-4o-transcribe-diarize", "known_speaker_names[]": ["a", "b"],
      "known_speaker_references[]": ["data:audio/wav;base64,AAAA"]}, "known_speaker_references"),
    ({"model": "gpt-4o-transcribe-diarize", "known_speaker_names[]": list("abcde"),
      "known_speaker_references[]": ["data:audio/wav;base64,AAAA"] * 5}, "known_speaker_names"),
    ({"model": "gpt-4o-transcribe-diarize", "known_speaker_names[]": ["a"],
      "known_speaker_references[]": ["data:audio/wav;base64,bm90IGF1ZGlv"]}, "known_speaker_references"),
])
def test_bad_speaker_fields_are_400s(server, jfk, fields, param):
    r = _post(server, file=jfk.read_bytes(), **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_reference_clips_must_be_2_to_10_seconds(server, jfk, references, tmp_path):
    from leanspeech.audio import decode_audio, write_wav

    audio = decode_audio(references["piper"])
    for seconds, match in ((1.0, "lasts 1.0 s"), (None, "longer than 10 s")):
        clip = audio[: int(seconds * 16000)] if seconds else decode_audio(jfk)  # jfk.flac lasts 11 s
        write_wav(tmp_path / "ref.wav", clip)
        url = _data_url(tmp_path / "ref.wav")
        r = _post(server, file=jfk.read_bytes(), model="gpt-4o-transcribe-diarize",
                  **{"known_speaker_names[]": ["a"], "known_speaker_references[]": [url]})
        assert r.status_code == 400 and match in r.json()["error"]["message"], r.text


def test_paths_that_cannot_diarize(server, jfk):
    r = _post(server, "/v1/audio/translations", file=jfk.read_bytes(), model="base", response_format="diarized_json")
    assert r.status_code == 400, r.text
    r = _post(server, "/v1/audio/diarization", file=b"not audio" * 50)
    assert r.status_code in (400, 415) and "error" in r.json()
    r = _post(server, "/v1/audio/diarization", file=jfk.read_bytes(), response_format="srt")
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"
