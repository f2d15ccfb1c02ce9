"""``leanspeech batch`` in a subprocess with the real model: results mirrored under OUT as
each file finishes, bad files listed without stopping the job, a rerun that writes nothing."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import heard_jfk, wer

pytestmark = pytest.mark.model


def run(*args):
    return subprocess.run([sys.executable, "-m", "leanspeech", *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_a_directory_with_bad_files_then_a_rerun(jfk, tmp_path):
    from leanspeech.measure.corpus import sentences_clip

    src = tmp_path / "in"
    (src / "talks").mkdir(parents=True)
    shutil.copy(jfk, src / "talks" / "jfk.flac")
    clip, reference = sentences_clip(count=2, start=5)
    shutil.copy(clip, src / "speech.wav")
    (src / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(300))
    (src / "empty.flac").write_bytes(b"")
    out = tmp_path / "out"
    proc = run("batch", str(src), "--out", str(out), "--format", "json,srt,txt")
    assert proc.returncode == 1, proc.stderr  # two files failed; the job finished
    assert "2 written, 0 already done, 2 failed, of 4 files" in proc.stderr, proc.stderr
    failed_lines = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == 2 and any("broken.wav" in x for x in failed_lines)
    assert any("empty.flac" in x and "empty" in x for x in failed_lines)
    body = json.loads((out / "talks" / "jfk.json").read_text())
    assert heard_jfk(body["text"]), body["text"]
    assert (out / "talks" / "jfk.srt").read_text().startswith("1\n00:00:00")
    assert wer(reference, (out / "speech.txt").read_text()) < 0.15
    failed = json.loads((out / "failed.json").read_text())
    assert sorted(os.path.basename(f["path"]) for f in failed) == ["broken.wav", "empty.flac"]
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "failed.json"}
    assert len(written) == 6 and not list(out.rglob(".*.partial"))

    again = run("batch", str(src), "--out", str(out), "--format", "json,srt,txt")
    assert "0 written, 2 already done, 2 failed" in again.stderr, again.stderr
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing rewritten


def test_a_manifest_and_usage_errors(jfk, tmp_path):
    manifest = tmp_path / "files.txt"
    manifest.write_text(f"{jfk}\n")
    proc = run("batch", str(manifest), "--out", str(tmp_path / "out"), "-f", "vtt", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "jfk.vtt").read_text().startswith("WEBVTT")
    bad = run("batch", str(manifest), "--out", str(tmp_path / "out"), "-f", "docx")
    assert bad.returncode == 2 and "unknown format 'docx'" in bad.stderr
    none = run("batch", str(tmp_path / "nothing-*.wav"), "--out", str(tmp_path / "out"))
    assert none.returncode == 2 and "matches no file" in none.stderr
