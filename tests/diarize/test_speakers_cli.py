"""transcribe --diarize and batch --diarize: speakers in the files they write."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.model


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "leanspeech", *args], capture_output=True, text=True, timeout=timeout)


def test_transcribe_diarize_writes_labelled_subtitles(conversation, tmp_path):
    done = _cli("transcribe", str(conversation.path), "--diarize", "--max-speakers", "4", "-f", "srt",
                "-o", str(tmp_path), "-q")
    assert done.returncode == 0, done.stderr
    srt = (tmp_path / f"{conversation.path.stem}.srt").read_text()
    labels = {line[1:line.index("]")] for line in srt.splitlines() if line.startswith("[")}
    assert 3 <= len(labels) <= 4, srt


def test_batch_diarize_writes_speakers_in_json(conversation, tmp_path):
    done = _cli("batch", str(conversation.path), "--out", str(tmp_path / "out"), "--diarize", "--speakers", "2",
                "-f", "json", "-q")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / f"{conversation.path.stem}.json").read_text())
    assert {s["speaker"] for s in data["segments"]} == {"A", "B"}


@pytest.mark.parametrize("args, message", [
    (["--speakers", "2"], "need --diarize"),
    (["--diarize", "--min-speakers", "4", "--max-speakers", "2"], "more than --max-speakers"),
    (["--diarize", "--channels", "split"], "cannot be combined with --diarize"),
])
def test_bad_speaker_options_exit_2(jfk, args, message):
    done = _cli("transcribe", str(jfk), *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
