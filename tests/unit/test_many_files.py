"""``Transcriber.transcribe_many`` on a fake engine: the windows of many short files share
decode calls, each file gets the result it gets alone, a bad file is reported and the rest go
on, and long files interleave with short ones without holding more than a group."""

import numpy as np
import pytest
from fakes import FakeEngine, tone

from leanspeech.errors import InvalidAudioError
from leanspeech.stt import Transcriber


def transcriber(batch_size=8, **kw):
    return Transcriber(engine=FakeEngine(), vad=False, batch_size=batch_size, **kw)


def test_short_files_share_decode_calls_and_match_one_by_one():
    clips = [tone(s) for s in (2.0, 5.5, 3.0, 16.0, 8.0, 2.5, 4.0, 12.0, 6.0, 9.0)]
    together = transcriber()
    results = dict(together.transcribe_many(clips))
    assert sorted(results) == list(range(len(clips)))
    assert together.engine.calls == [8, 2]  # ten one-window files in two decode calls
    alone = transcriber()
    for i, clip in enumerate(clips):
        single = alone.transcribe(clip)
        assert results[i].text == single.text
        assert [(s.start, s.end) for s in results[i].segments] == [(s.start, s.end) for s in single.segments]
        assert results[i].info.duration == pytest.approx(clip.shape[0] / 16000)
    assert alone.engine.calls == [1] * len(clips)


def test_a_bad_file_is_reported_and_the_others_go_on(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    inputs = [tone(2.0), str(broken), tone(3.0), str(tmp_path / "missing.wav"), tone(1.0)]
    out = dict(transcriber().transcribe_many(inputs))
    assert sorted(out) == [0, 1, 2, 3, 4]
    assert isinstance(out[1], InvalidAudioError) and isinstance(out[3], InvalidAudioError)
    assert all(out[i].text for i in (0, 2, 4))


def test_long_and_short_files_interleave_in_groups():
    long = tone(95.0)  # four windows
    t = transcriber(batch_size=4)
    order = [i for i, _ in t.transcribe_many([tone(2.0), long, tone(3.0), tone(4.0)])]
    assert sorted(order) == [0, 1, 2, 3]
    assert max(t.engine.calls) <= 4 and sum(t.engine.calls) == 7
    assert len(t.engine.calls) == 2  # 1 + 3 of the long file, then its last + the two short ones


def test_silence_and_sequential_and_split_channels():
    silent = np.zeros(16000 * 3, np.float32)
    out = dict(Transcriber(engine=FakeEngine(), vad=True, batch_size=8).transcribe_many([silent, tone(2.0)]))
    assert out[0].text == "" and out[0].info.duration == 3.0
    seq = Transcriber(engine=FakeEngine(), vad=False, batch_size=0)
    assert [i for i, _ in seq.transcribe_many([tone(1.0), tone(2.0)])] == [0, 1]


def test_encoder_padding_is_refused_where_the_engine_cannot_shorten_its_input():
    from leanspeech.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="ctranslate2"):
        Transcriber(engine=FakeEngine(), encoder_padding=5)
