import re

from leanspeech.stt.formats import render, timestamp
from leanspeech.stt.result import Segment, Timings, Transcription, TranscriptionInfo

SRT_TS = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TS = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def _result():
    info = TranscriptionInfo(3725.5, 3700.0, "en", 1.0, "transcribe", "tiny.en", "cpu", "int8", "auto", "", 4,
                             Timings(0.1, 1.0, 3725.5))
    segs = (Segment(1, 0.0, 2.5, " Hello there."), Segment(2, 2.5, 2.5, " Zero --> length."),
            Segment(3, 3723.999, 3725.4996, " Over an hour in."), Segment(4, 5.0, 6.0, "   "))
    return Transcription(segs, info)


def test_timestamp():
    assert timestamp(0) == "00:00:00,000"
    assert timestamp(3723.4567) == "01:02:03,457"
    assert timestamp(59.9999, sep=".") == "00:01:00.000"
    assert timestamp(-1) == "00:00:00,000"


def test_srt_is_valid():
    text = render(_result(), "srt")
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 3  # the blank segment is left out
    for i, block in enumerate(blocks, 1):
        index, times, body = block.split("\n")
        assert index == str(i)
        start, end = times.split(" --> ")
        assert re.fullmatch(SRT_TS, start) and re.fullmatch(SRT_TS, end)
        assert end > start  # zero-length cues get 1 ms
        assert body and "-->" not in body


def test_vtt_is_valid():
    text = render(_result(), "vtt")
    assert text.startswith("WEBVTT\n\n")
    cues = text.split("\n\n")[1:]
    for cue in cues:
        times, body = cue.strip().split("\n")
        start, end = times.split(" --> ")
        assert re.fullmatch(VTT_TS, start) and re.fullmatch(VTT_TS, end)
    assert "01:02:05.500" in text


def test_txt_tsv_json():
    import json

    r = _result()
    assert render(r, "txt").splitlines() == ["Hello there.", "Zero --> length.", "Over an hour in."]
    tsv = render(r, "tsv").splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[1] == "0\t2500\tHello there."
    data = json.loads(render(r, "json"))
    assert data["text"].startswith("Hello there.") and data["info"]["precision"] == "int8"
    assert len(data["segments"]) == 4


def test_unknown_format():
    import pytest

    from leanspeech.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="txt, srt, vtt, json, tsv"):
        render(_result(), "docx")
