"""The real ``leanspeech`` command in a subprocess: output and every error path."""

import os
import subprocess
import sys

import pytest

from helpers import JFK_PHRASE, heard_jfk, normalized

pytestmark = pytest.mark.model


def run(*args, env=None, cwd=None):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "leanspeech", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)


def one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors, proc.stderr
    for needle in needles:
        assert any(needle in e for e in errors), (needle, errors)


def test_transcribe_prints_text_and_summary(jfk):
    proc = run("transcribe", str(jfk), "--precision", "int8")
    assert proc.returncode == 0, proc.stderr
    assert JFK_PHRASE in normalized(proc.stdout)
    summary = proc.stderr.strip().splitlines()[-1]
    assert "11.0 s audio" in summary and "RTF" in summary and "peak RSS" in summary and "at int8" in summary
    assert "Using device=cpu precision=int8 (requested int8)" in proc.stderr


@pytest.mark.parametrize(
    "fmt,marker", [("srt", " --> "), ("vtt", "WEBVTT"), ("json", '"segments"'), ("tsv", "start\tend\ttext")]
)
def test_formats_to_output_dir(jfk, tmp_path, fmt, marker):
    proc = run("transcribe", str(jfk), "--format", fmt, "--output-dir", str(tmp_path / "out"), "-q")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "out" / f"jfk.{fmt}").read_text()
    assert marker in text and "country" in text


def test_missing_file():
    one_line_error(run("transcribe", "/no/such/file.wav"), "/no/such/file.wav", "no such file")


def test_not_audio_and_empty_files_and_many_files(jfk, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is text, not audio\n")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    proc = run("transcribe", str(bad), str(jfk), str(empty), "-q")
    # the good file in the middle is still transcribed
    assert heard_jfk(proc.stdout), proc.stdout
    one_line_error(proc, "notes.wav: not decodable audio", "empty.flac: the file is empty")


def test_unknown_model():
    one_line_error(run("transcribe", "x.wav", "--model", "huge-v9"), "unknown model 'huge-v9'", "tiny.en")


def test_unknown_precision(jfk):
    one_line_error(run("transcribe", str(jfk), "--precision", "int4"), "unknown precision 'int4'", "int8_float16")


def test_unknown_format(jfk):
    one_line_error(run("transcribe", str(jfk), "--format", "docx"), "unknown format 'docx'", "srt")


def test_unwritable_output_dir(jfk, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(run("transcribe", str(jfk), "--output-dir", str(blocker / "sub")), "cannot create output directory")
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        one_line_error(run("transcribe", str(jfk), "--output-dir", str(ro)), "not writable")


def test_offline_model_not_available(jfk, tmp_path):
    proc = run("transcribe", str(jfk), "--model", "small", env={"LEANSPEECH_MODEL_DIR": str(tmp_path)})
    one_line_error(proc, "model 'small' is not available offline", "Systran/faster-whisper-small")


def test_strict_precision(jfk):
    proc = run("transcribe", str(jfk), "--precision", "float16", env={"LEANSPEECH_STRICT_PRECISION": "true"})
    one_line_error(proc, "float16", "strict")


def test_bad_setting_env(jfk):
    one_line_error(run("transcribe", str(jfk), env={"WL_COMPUTE_TYPE": "int3"}), "invalid settings")


def test_doctor_json():
    import json

    proc = run("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    cpu = next(d for d in report["devices"] if d["kind"] == "cpu")
    assert "int8" in cpu["precisions"] and "float16" not in cpu["precisions"]
    tiny = next(m for m in report["models"] if m["name"] == "tiny.en")
    assert tiny["available"] and tiny["sources"][0]["source"] == "bundled"
