"""The batch job's bookkeeping, no model: which files a directory, a glob or a manifest
names, where each result goes, what counts as done, and writes that are whole or absent."""

import json

import pytest
from fakes import FakeEngine, tone

from leanspeech.batch.job import collect, is_done, order_formats, plan_items, run_batch, write_failures
from leanspeech.errors import InvalidOptionError
from leanspeech.stt import Transcriber


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_directory_a_glob_and_a_manifest(tmp_path):
    a = touch(tmp_path / "in" / "a.wav")
    b = touch(tmp_path / "in" / "sub" / "b.flac")
    touch(tmp_path / "in" / "notes.md")
    files, base = collect(str(tmp_path / "in"))
    assert files == [a, b] and base == tmp_path / "in"
    files, base = collect(str(tmp_path / "in" / "**" / "*.flac"))
    assert files == [b]
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# two files\nin/a.wav\n\n{b}\nin/missing.wav\n")
    files, base = collect(str(manifest))
    assert files == [a.resolve(), b, (tmp_path / "in" / "missing.wav").resolve()]  # a missing one fails later
    with pytest.raises(InvalidOptionError, match="matches no file"):
        collect(str(tmp_path / "nothing-*.wav"))


def test_targets_mirror_the_input_and_keep_apart_same_stems(tmp_path):
    files = [tmp_path / "in" / "x" / "a.wav", tmp_path / "in" / "a.wav", tmp_path / "in" / "a.mp3"]
    items = plan_items(files, tmp_path / "in", tmp_path / "out")
    assert [i.target for i in items] == [tmp_path / "out" / "x" / "a", tmp_path / "out" / "a",
                                         tmp_path / "out" / "a.mp3"]
    assert items[0].output("srt") == tmp_path / "out" / "x" / "a.srt"


def test_formats_are_checked_and_json_goes_last():
    assert order_formats(["json", "srt", "txt"]) == ("srt", "txt", "json")
    with pytest.raises(InvalidOptionError, match="docx"):
        order_formats(["srt", "docx"])


def test_run_writes_each_file_once_resumes_and_lists_bad_files(tmp_path, monkeypatch):
    import leanspeech.batch.job as batch_module

    good = [touch(tmp_path / "in" / f"clip{i}.wav") for i in range(3)]
    bad = touch(tmp_path / "in" / "broken.wav")
    audio = {str(p): tone(1.0 + i) for i, p in enumerate(good)}

    def read(path):
        from leanspeech.errors import InvalidAudioError

        if path not in audio:
            raise InvalidAudioError(f"{path}: not decodable audio")
        return audio[path]

    monkeypatch.setattr("leanspeech.stt.transcriber.decode_audio", read)
    items = plan_items([*good, bad], tmp_path / "in", tmp_path / "out")
    formats = order_formats(["json", "txt"])
    t = Transcriber(engine=FakeEngine(), vad=False, batch_size=8)
    seen = []
    summary = run_batch(t, items, formats, on_done=lambda item, status: seen.append(status))
    assert sorted(seen) == ["failed", "written", "written", "written"]
    assert summary.written == good and summary.failed[0][0] == bad and "not decodable" in summary.failed[0][1]
    assert t.engine.calls == [3]  # three files, one decode call
    assert all(is_done(i, formats) for i in items[:3]) and not is_done(items[3], formats)
    body = json.loads(items[0].output("json").read_text())
    assert body["text"] and not list((tmp_path / "out").glob(".*.partial"))
    again = run_batch(t, items, formats)
    assert again.written == [] and again.skipped == good and len(again.failed) == 1 and t.engine.calls == [3]
    failed = json.loads(write_failures(tmp_path / "out", again.failed).read_text())
    assert failed == [{"path": str(bad), "error": again.failed[0][1]}]
    assert batch_module.FAILED == "failed.json"
